#!/usr/bin/env bash
# bench/scale-out.sh CORPUS_DIR [WORKDIR] — the scaled-out setup (PostgreSQL + S3, two nodes)
# measured against one node, in one run:
#
#   reads     one node on SQLite and one on PostgreSQL + S3, both loaded with the corpus, read
#             by the shared harness's compare.sh (ROUNDS rounds, alternated): B/A is PG+S3's
#             share of SQLite's req/s.
#   publish   the corpus published (load.mjs -c $C) through nginx into one PG+S3 node, then
#             into a fresh schema and prefix through nginx round-robin over two nodes:
#             publishes/s of each.
#   kill      `npm install` of the corpus's root project (cold cache) through nginx over the
#             two nodes, with node B stopped KILL_AFTER seconds in: once with SIGTERM (a
#             stop: it finishes what it has begun), once with SIGKILL (a crash) on a fresh
#             pair; does the install complete, in how long (nginx retries what has not begun
#             onto the other node: proxy_next_upstream), and if not, does a second one.
#
# Needs: the release binary (cargo build --release), nginx (Debian's), node + npm, the shared
# harness (SHARED=…/shared/bench), and contrib/services.sh's PostgreSQL and S3 server (started
# here in WORKDIR/services and stopped at the end). Ports 4890-4895 on 127.0.0.1; every server
# is stopped by its PID; every load loop is bounded (compare.sh's DURATION, load.mjs's corpus).
# Env: ROUNDS=2 C=8 KILL_AFTER=2 PHASES="reads publish kill" SHARED=../shared/bench
#      REGISTRY=target/release/registry
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$(cd "${1:?usage: scale-out.sh CORPUS_DIR [WORKDIR]}" && pwd)"
work="${2:-/tmp/bench-scale-out}"
ROUNDS="${ROUNDS:-2}"; C="${C:-8}"; KILL_AFTER="${KILL_AFTER:-2}"
PHASES="${PHASES:-reads publish kill}"
phase() { [[ " $PHASES " == *" $1 "* ]]; }
. "$here/lib.sh"
rm -rf "$work/nodes"; mkdir -p "$work/nodes"
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  bash "$here/../contrib/services.sh" down "$work/services" >/dev/null 2>&1 || true
}
trap stop_all EXIT
eval "$(bash "$here/../contrib/services.sh" up "$work/services")"
base_url="$REGISTRY_DATABASE_URL"
bucket="${REGISTRY_BLOBS_URL#s3://}"; bucket="${bucket%%/*}"
# Only the PostgreSQL nodes get these (pg_node); the SQLite node must not inherit them.
unset REGISTRY_DATABASE_URL REGISTRY_BLOBS_URL
# Short: s3s-fs caps a key near 160 bytes, and a blob key is the prefix plus 135.
run_id="$(date +%s | tail -c 6)"

# A fresh schema and bucket prefix for one setup; prints the database_url.
fresh() {
  psql -q "$base_url" -c "DROP SCHEMA IF EXISTS $1 CASCADE; CREATE SCHEMA $1;" >&2
  echo "$base_url?options=-csearch_path%3D$1"
}
# pg_node PORT NAME SCHEMA_URL PREFIX — a node on PostgreSQL + S3; prints its PID.
pg_node() {
  REGISTRY_DATABASE_URL="$3" REGISTRY_BLOBS_URL="s3://$bucket/$4" \
    serve_ours "$1" "$work/nodes/$2" --registration open
}
# nginx in front of two nodes, retrying a request on the other when one is down.
start_lb() {
  local run="$work/nginx"; mkdir -p "$run"
  cat > "$run/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $run/nginx.pid;
error_log $run/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_max_body_size 200m;
  upstream nodes {
    server 127.0.0.1:$1 max_fails=1 fail_timeout=10s;
    server 127.0.0.1:$2 max_fails=1 fail_timeout=10s;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:4894;
    location / {
      proxy_pass http://nodes;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 2;
    }
  }
}
CONF
  "$(command -v nginx || echo /usr/sbin/nginx)" -c "$run/nginx.conf" -p "$run" &
  lb_pid=$!
  pids+=("$lb_pid")
  wait_up http://127.0.0.1:4894
}
stop_lb() {
  kill "$lb_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:4894/ || return 0; sleep 0.05; done
}
# Waits (5 s at most) until nothing answers on PORT: a stopped node may still be draining.
wait_down() {
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/-/ping" || return 0; sleep 0.05; done
}
published() { grep -E '^published' | sed -E 's/.*: ([0-9.]+) publishes\/s.*/\1/'; }

echo "# scale-out.sh ($(date -u +%FT%TZ)), corpus $(wc -l < "$corpus/index.tsv") versions, C=$C"

# two_nodes NAME — a fresh pair behind nginx on one schema and prefix; sets a_pid and b_pid.
two_nodes() {
  local url; url=$(fresh "bench_$1")
  a_pid=$(pg_node 4892 "$1-a" "$url" "${1:0:2}-$run_id"); pids+=("$a_pid")
  b_pid=$(pg_node 4893 "$1-b" "$url" "${1:0:2}-$run_id"); pids+=("$b_pid")
  start_lb 4892 4893
}
# install_killing SIGNAL — npm install through nginx while node B gets SIGNAL.
install_killing() {
  local project; project="$(mktemp -d /tmp/bench-scale-out-install.XXXXXX)"
  cp "$shared/corpus.root.json" "$project/package.json"
  printf 'registry=http://127.0.0.1:4894/\n' > "$project/.npmrc"
  local started; started=$(date +%s.%N)
  ( sleep "$KILL_AFTER"; kill "-$1" "$b_pid" && echo "sent SIG$1 to node B at ${KILL_AFTER}s" ) &
  local killer=$!
  local outcome=completed
  (cd "$project" && npm install --userconfig "$project/.npmrc" --cache "$project/cache" \
     --prefer-online --no-audit --no-fund --ignore-scripts > "$project/npm.log" 2>&1) ||
    outcome="FAILED ($(grep -m1 -Eo 'code E[A-Z]+' "$project/npm.log" || echo '?'))"
  wait "$killer" || true
  printf 'install with node B stopped by SIG%s: %s in %.1f s (%s)\n' "$1" "$outcome" \
    "$(echo "$(date +%s.%N) - $started" | bc)" \
    "$(grep -Eo 'added [0-9]+ packages' "$project/npm.log" || echo 'nothing added')"
  if [[ "$outcome" != completed ]]; then
    (cd "$project" && npm install --userconfig "$project/.npmrc" --cache "$project/cache" \
       --prefer-online --no-audit --no-fund --ignore-scripts > "$project/npm-again.log" 2>&1) &&
      echo "  a second npm install, node B still down: completed ($(grep -Eo 'added [0-9]+ packages' "$project/npm-again.log"))" ||
      echo "  a second npm install failed too: see $project"
  fi
}
if phase reads; then
echo "## reads: SQLite (A) against PostgreSQL + S3 (B)"
sqlite_pid=$(serve_ours 4890 "$work/nodes/sqlite" --registration open); pids+=("$sqlite_pid")
node "$shared/load.mjs" --registry http://127.0.0.1:4890 --corpus "$corpus" -c "$C" >/dev/null
one_pid=$(pg_node 4891 one "$(fresh bench_one)" "r1-$run_id"); pids+=("$one_pid")
node "$shared/load.mjs" --registry http://127.0.0.1:4891 --corpus "$corpus" -c "$C" >/dev/null
LABEL_A=sqlite LABEL_B=pg-s3 "$shared/compare.sh" http://127.0.0.1:4890 http://127.0.0.1:4891 "$ROUNDS"
kill "$sqlite_pid" "$one_pid"
wait_down 4890; wait_down 4891

fi

if phase publish; then
echo "## publish: one node against two, both behind nginx (fresh schemas and prefixes)"
one_pid=$(pg_node 4895 one-publish "$(fresh bench_one_publish)" "p1-$run_id")
pids+=("$one_pid")
start_lb 4895 4895
one_publish=$(node "$shared/load.mjs" --registry http://127.0.0.1:4894 --corpus "$corpus" -c "$C" |
  tee /dev/stderr | published)
stop_lb
kill "$one_pid"
two_nodes two
two_publish=$(node "$shared/load.mjs" --registry http://127.0.0.1:4894 --corpus "$corpus" -c "$C" |
  tee /dev/stderr | published)
echo "publishes/s: one node $one_publish, two nodes $two_publish"
stop_lb; kill "$a_pid" "$b_pid"
wait_down 4892; wait_down 4893

fi

if phase kill; then
echo "## kill: npm install through nginx, node B stopped ${KILL_AFTER}s in"
two_nodes term
node "$shared/load.mjs" --registry http://127.0.0.1:4894 --corpus "$corpus" -c "$C" >/dev/null
install_killing TERM
stop_lb; kill "$a_pid" 2>/dev/null || true
wait_down 4892; wait_down 4893
two_nodes kill
node "$shared/load.mjs" --registry http://127.0.0.1:4894 --corpus "$corpus" -c "$C" >/dev/null
install_killing KILL
fi
