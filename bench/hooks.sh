#!/usr/bin/env bash
# bench/hooks.sh — what hooks cost a publish: the latency of sequential publishes (C=1, each a
# new version of one package) on a registry with no hooks (A) and on one with 10 hooks on that
# package (B) whose receiver is up and answers 200 — so that B also delivers while it
# publishes. Rounds alternate (A B A B …) on the same machine, so that drift hits both alike.
#
# Usage: bench/hooks.sh [ROUNDS] [PUBLISHES_PER_ROUND]   (default 20 rounds of 25: short rounds,
#        so that the machine's drift, as large as the cost measured, falls on both sides alike)
# Needs: nginx (the receiver; Debian's package), python3 (the publishing client).
# Env:   BIN=target/release/registry (build it first: cargo build --release)
#        PORT_A=4887 PORT_B=4888 PORT_RECEIVER=4889
#        ENDPOINTS=refused: B's hooks point at a port nobody listens on, and a failed delivery is
#        retried only after an hour, so that B does hardly any delivery work: what is left is
#        the cost of the outbox on the request path (the receiver's count is then 0).
#
# Rules (as in ../shared/bench): servers listen on 127.0.0.1 only, every loop is bounded, the
# servers are stopped by their own PID (also on error / Ctrl-C), and nothing but a temporary
# directory under /tmp is written.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${BIN:-$here/../target/release/registry}"
rounds="${1:-20}"; per_round="${2:-25}"
port_a="${PORT_A:-4887}"; port_b="${PORT_B:-4888}"; port_r="${PORT_RECEIVER:-4889}"
endpoint_port="$port_r"; retry_setting=""
case "${ENDPOINTS:-up}" in
  up) ;;
  refused) endpoint_port=9; retry_setting="hooks_retry_base_ms = 3600000" ;; # discard: closed here
  *) echo "ENDPOINTS is up or refused" >&2; exit 2 ;;
esac
[[ -x "$bin" ]] || { echo "no binary at $bin: cargo build --release" >&2; exit 1; }

work="$(mktemp -d /tmp/registry-bench-hooks.XXXXXX)"
pids=()
stop() { # stop one process by its PID and wait (bounded) until it is gone
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() { for p in "${pids[@]}"; do stop "$p"; done; rm -rf "$work"; }
trap cleanup EXIT

# start LABEL PORT — a registry on its own data dir, hooks allowed to call 127.0.0.1
start() {
  local dir="$work/$1"; mkdir -p "$dir"
  cat > "$dir/registry.toml" <<EOF
listen = "127.0.0.1:$2"
data_dir = "$dir/data"
registration = "open"
log_level = "warn"
hooks_allow_private = true
$retry_setting
EOF
  "$bin" serve --config "$dir/registry.toml" >"$dir/log" 2>&1 &
  echo $!
}

# The receiver: nginx answering 204 to every POST, one access-log line per delivery. It is
# cheap (a Python receiver took a core's worth of the 2 cores from the registries it measured).
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log $work/received.log;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$port_r;
    location / { return 204; }
  }
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=("$!")
pid_a="$(start none "$port_a")"; pids+=("$pid_a")
pid_b="$(start hooked "$port_b")"; pids+=("$pid_b")

echo "date: $(date -u +%FT%TZ); $(nproc) cores; $rounds rounds of $per_round publishes each side"
python3 - "$port_a" "$port_b" "$endpoint_port" "$rounds" "$per_round" <<'EOF'
import base64, hashlib, io, json, statistics, sys, tarfile, time, urllib.request

port_a, port_b, port_r, rounds, per_round = map(int, sys.argv[1:])

def call(method, url, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")

def wait_up(base):
    for _ in range(100):
        try:
            return call("GET", base + "/-/ping")
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{base} did not start")

def document(version):
    files = {"package/package.json": json.dumps({"name": "bench-hooked", "version": version}).encode(),
             "package/index.js": b"module.exports = 42;\n" * 40}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name); info.size = len(data); info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    tgz = buf.getvalue()
    return {"_id": "bench-hooked", "name": "bench-hooked", "dist-tags": {"latest": version},
            "versions": {version: {"name": "bench-hooked", "version": version,
              "dist": {"shasum": hashlib.sha1(tgz).hexdigest(),
                       "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode(),
                       "tarball": "http://x/t.tgz"}}},
            "_attachments": {f"bench-hooked-{version}.tgz": {"content_type": "application/octet-stream",
              "data": base64.b64encode(tgz).decode(), "length": len(tgz)}}}

sides = {}
for label, port in (("A", port_a), ("B", port_b)):
    base = f"http://127.0.0.1:{port}"
    wait_up(base)
    token = call("PUT", base + "/-/user/org.couchdb.user:bench",
                 {"name": "bench", "password": "bench-password-1", "email": "b@example.com",
                  "type": "user"})["token"]
    call("PUT", base + "/bench-hooked", document("0.0.0"), token)
    sides[label] = {"base": base, "token": token, "next": 1, "times": []}
for n in range(10):
    call("POST", sides["B"]["base"] + "/-/npm/v1/hooks/hook",
         {"type": "package", "name": "bench-hooked", "secret": f"secret-{n}",
          "endpoint": f"http://127.0.0.1:{port_r}/hook/{n}"}, sides["B"]["token"])

def run(label, count, record=True):
    side = sides[label]
    for _ in range(count):
        body = document(f"1.0.{side['next']}"); side["next"] += 1
        started = time.perf_counter()
        call("PUT", side["base"] + "/bench-hooked", body, side["token"])
        if record:
            side["times"].append((time.perf_counter() - started) * 1000)

run("A", 20, False); run("B", 20, False)   # warm-up, not recorded
for round in range(rounds):
    run("A", per_round); run("B", per_round)
    a = statistics.median(sides["A"]["times"][-per_round:])
    b = statistics.median(sides["B"]["times"][-per_round:])
    print(f"round {round + 1}: median publish no hooks (A) {a:.2f} ms, 10 hooks (B) {b:.2f} ms")
a, b = (statistics.median(sides[s]["times"]) for s in "AB")
ma, mb = (statistics.mean(sides[s]["times"]) for s in "AB")
print(f"all: median A {a:.2f} ms, B {b:.2f} ms → B/A = {b / a:.3f} ({(b / a - 1) * 100:+.1f} %); "
      f"mean A {ma:.2f} ms, B {mb:.2f} ms → {(mb / ma - 1) * 100:+.1f} %")
hook_list = call("GET", sides["B"]["base"] + "/-/npm/v1/hooks", token=sides["B"]["token"])
print("B's hooks delivered:", sum(1 for h in hook_list["objects"] if h["delivered"]), "of 10")
EOF
# Deliveries keep coming after the last publish: give them a bounded moment, then report.
expected=$(( 10 * (rounds * per_round + 20) ))
received() { wc -l < "$work/received.log" 2>/dev/null || echo 0; }
if [[ "$endpoint_port" == "$port_r" ]]; then
  for _ in $(seq 1 100); do
    (( $(received) >= expected )) && break
    sleep 0.2
  done
fi
echo "receiver got $(received) deliveries of the $expected made"
