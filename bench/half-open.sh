#!/usr/bin/env bash
# bench/half-open.sh [N] [WORKDIR] — the slow-client attack against a fresh release registry:
# N (default 20000) half-open connections (half-open.mjs) held for 15 s with the default
# header_timeout (10 s), while a client pings once a second; prints the attack's outcome, the
# pings' statuses and times, and the registry's resident memory (peak, from /proc) and log
# warnings. Needs the release binary and node; SHARED=…/shared/bench for rss.sh. Port 4899.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
n="${1:-20000}"; work="${2:-/tmp/bench-half-open}"
. "$here/lib.sh"
rm -rf "$work"; mkdir -p "$work"
ulimit -n "$(ulimit -Hn)"
"$registry" serve --listen 127.0.0.1:4899 --data-dir "$work/data" --log-level warn > "$work/registry.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
wait_up http://127.0.0.1:4899
echo "# half-open.sh ($(date -u +%FT%TZ)) N=$n, open-file limit $(ulimit -Hn)"
"$shared/rss.sh" "$pid"
node "$here/half-open.mjs" 127.0.0.1:4899 "$n" 15 &
attack=$!
for i in $(seq 1 12); do
  sleep 1
  curl -s -o /dev/null -m 5 -w "ping during the attack: %{http_code} in %{time_total}s\n" http://127.0.0.1:4899/-/ping || echo "ping failed"
done
"$shared/rss.sh" "$pid"
wait "$attack"
"$shared/rss.sh" "$pid"
echo "log warnings: $(grep -c WARN "$work/registry.log" || true)"; grep WARN "$work/registry.log" | head -3 || true
