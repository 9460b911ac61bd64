#!/usr/bin/env bash
# bench/downloads.sh — what counting downloads costs: tarball GET throughput with counting on
# (A) and off (B, `count_downloads = false`), measured by the same wrk in alternating rounds
# (A B A B …) on the same machine, so that drift and noise hit both sides alike.
#
# Usage: bench/downloads.sh [ROUNDS]   (default 2; each round is 10 s of A then 10 s of B)
# Env:   BIN=target/release/registry (build it first: cargo build --release)
#        PORT_A=4885 PORT_B=4886 DURATION=10s CONNECTIONS=16
#
# Rules (as in ../shared/bench): both servers listen on 127.0.0.1 only, every load step is
# bounded in time (wrk -d), servers are stopped by their own PID (also on error / Ctrl-C), and
# nothing but a temporary directory under /tmp is written. Both servers log at `warn` so that
# the per-request log line (identical on both sides) does not drown the difference.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${BIN:-$here/../target/release/registry}"
rounds="${1:-2}"
port_a="${PORT_A:-4885}"; port_b="${PORT_B:-4886}"
duration="${DURATION:-10s}"; connections="${CONNECTIONS:-16}"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get update && apt-get install -y wrk" >&2; exit 1; }
[[ -x "$bin" ]] || { echo "no binary at $bin: cargo build --release" >&2; exit 1; }

work="$(mktemp -d /tmp/registry-bench-downloads.XXXXXX)"
pids=()
stop() { # stop one server by its PID and wait (bounded) until it is gone
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() { for p in "${pids[@]}"; do stop "$p"; done; rm -rf "$work"; }
trap cleanup EXIT

# start LABEL PORT COUNT_DOWNLOADS — a registry on its own data dir; prints its PID
start() {
  local dir="$work/$1"; mkdir -p "$dir"
  cat > "$dir/registry.toml" <<EOF
listen = "127.0.0.1:$2"
data_dir = "$dir/data"
registration = "open"
log_level = "warn"
count_downloads = $3
EOF
  "$bin" serve --config "$dir/registry.toml" >"$dir/log" 2>&1 &
  echo $!
}

# publish PORT — signs up a user and publishes bench-pkg@1.0.0 (a ~1 KiB tarball)
publish() {
  local base="http://127.0.0.1:$1"
  for _ in $(seq 1 100); do curl -sf "$base/-/ping" >/dev/null && break; sleep 0.1; done
  local token
  token="$(curl -sf -X PUT "$base/-/user/org.couchdb.user:bench" -H 'content-type: application/json' \
    -d '{"name":"bench","password":"bench-password-1","email":"bench@example.com","type":"user"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
  python3 - "$work/publish.json" <<'EOF'
import base64, hashlib, io, json, sys, tarfile
files = {"package/package.json": json.dumps({"name": "bench-pkg", "version": "1.0.0"}).encode(),
         "package/index.js": b"module.exports = 42;\n" * 40}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz") as tar:
    for name, data in files.items():
        info = tarfile.TarInfo(name); info.size = len(data); info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
tgz = buf.getvalue()
doc = {"_id": "bench-pkg", "name": "bench-pkg", "dist-tags": {"latest": "1.0.0"},
       "versions": {"1.0.0": {"name": "bench-pkg", "version": "1.0.0", "_id": "bench-pkg@1.0.0",
         "dist": {"shasum": hashlib.sha1(tgz).hexdigest(),
                  "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode(),
                  "tarball": "http://x/bench-pkg/-/bench-pkg-1.0.0.tgz"}}},
       "_attachments": {"bench-pkg-1.0.0.tgz": {"content_type": "application/octet-stream",
         "data": base64.b64encode(tgz).decode(), "length": len(tgz)}}}
json.dump(doc, open(sys.argv[1], "w"))
EOF
  curl -sf -X PUT "$base/bench-pkg" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' --data-binary "@$work/publish.json" >/dev/null
  curl -sf -o /dev/null "$base/bench-pkg/-/bench-pkg-1.0.0.tgz"
}

# measure PORT [DURATION] — requests/s of tarball GETs, bounded by wrk's -d; adds the number of
# requests wrk completed to the file $work/sent-PORT (to compare with what was counted)
measure() {
  local out
  out="$(wrk -t1 -c"$connections" -d"${2:-$duration}" "http://127.0.0.1:$1/bench-pkg/-/bench-pkg-1.0.0.tgz")"
  echo "$out" | awk '/ requests in / {print $1}' >> "$work/sent-$1"
  echo "$out" | awk '/^Requests\/sec:/ {print $2}'
}

pid_a="$(start on "$port_a" true)"; pids+=("$pid_a")
pid_b="$(start off "$port_b" false)"; pids+=("$pid_b")
publish "$port_a"; publish "$port_b"

echo "date: $(date -u +%FT%TZ); $(nproc) cores; $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); wrk -t1 -c$connections -d$duration"
# A short warm-up of each (page cache, connection pools), not recorded.
measure "$port_a" 2s >/dev/null; measure "$port_b" 2s >/dev/null
sum_a=0; sum_b=0
for round in $(seq 1 "$rounds"); do
  a="$(measure "$port_a")"; b="$(measure "$port_b")"
  echo "round $round: counting on (A) $a req/s, counting off (B) $b req/s"
  sum_a="$(echo "$sum_a + $a" | bc -l)"; sum_b="$(echo "$sum_b + $b" | bc -l)"
done
# The counts the A server recorded (flushed every 5 s): proof that it really counted.
sleep 6
# (wrk does not count the requests still in flight when it stops, which the server answered and
# counted, so A's count is the requests wrk completed plus at most a few per run.)
sent_a="$(paste -sd+ "$work/sent-$port_a" | bc)"
echo "A: wrk completed $sent_a GETs (+1 by curl); counted: $(curl -sf "http://127.0.0.1:$port_a/downloads/point/last-day/bench-pkg")"
echo "B counted: $(curl -sf "http://127.0.0.1:$port_b/downloads/point/last-day/bench-pkg")"
mean_a="$(echo "$sum_a / $rounds" | bc -l)"; mean_b="$(echo "$sum_b / $rounds" | bc -l)"
printf 'mean: on %.0f req/s, off %.0f req/s; on/off = %.3f (counting costs %.1f %%)\n' \
  "$mean_a" "$mean_b" "$(echo "$mean_a / $mean_b" | bc -l)" \
  "$(echo "(1 - $mean_a / $mean_b) * 100" | bc -l)"
