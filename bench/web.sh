#!/usr/bin/env bash
# bench/web.sh [WORKDIR] — server time of the web UI's pages at scale: the home page and search
# over 10,000 packages, and the package page of a 2,000-version package.
#
# Publishes two synthetic corpora (the shared harness's synth.sh, over the real wire protocol
# with its load.mjs) into one fresh registry: 10,000 packages of one version each, whose
# manifests depend on other synthetic names (so that dependents are found), and one package
# with 2,000 versions. Then wrk with one connection (the latency of one request at a time is
# the server's time plus loopback) for DURATION seconds on each page, ROUNDS times.
# Prints one line per page and round: req/s, p50, p99 and max in ms. Free-text rankings are
# kept between searches, so wrk's repeated search measures a kept ranking; the rows
# `search-first` then time the first search after a change to the index (a block and an unblock
# of an unpublished name by the CLI's local mode), FIRSTS times per round, with curl, and the
# rows `search-first-doc` the first search after a change to a package's indexed document (a
# dist-tag added to one of the 10,000 by the CLI; it is removed again after the search).
#
# Needs: the release binary (cargo build --release), wrk, node, and the shared harness
# (SHARED=…/shared/bench: synth.sh, load.mjs, read.lua). Port 4898 on 127.0.0.1; the registry
# is stopped by its PID on exit. Env: ROUNDS=3 DURATION=10 SHARED=../shared/bench
# REGISTRY=target/release/registry KEEP=1 (reuse WORKDIR's corpora and data) FIRSTS=20.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${1:-/tmp/bench-web}"
ROUNDS="${ROUNDS:-3}"; DURATION="${DURATION:-10}"; FIRSTS="${FIRSTS:-20}"
. "$here/lib.sh"
port=4898; url="http://127.0.0.1:$port"
[[ -n "${KEEP:-}" ]] || rm -rf "$work"
mkdir -p "$work"
pid=""
cleanup() { [[ -z "$pid" ]] || kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT

[[ -f "$work/synth10k/index.tsv" ]] || "$shared/synth.sh" "$work/synth10k" 10000 1 > /dev/null
[[ -f "$work/big/index.tsv" ]] || NAME=synth-big "$shared/synth.sh" "$work/big" 1 2000 > /dev/null

fresh=""; [[ -d "$work/data" ]] || fresh=1
"$registry" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --log-level warn \
  --registration open > "$work/registry.log" 2>&1 &
pid=$!
wait_up "$url"
if [[ -n "$fresh" ]]; then
  node "$shared/load.mjs" --registry "$url" --corpus "$work/synth10k" -c 4 | tail -1
  node "$shared/load.mjs" --registry "$url" --corpus "$work/big" -c 1 | tail -1
fi

pages=(
  "home            /"
  "search          /-/web/search?q=synth"
  "search-page-50  /-/web/search?q=synth&page=50"
  "search-keyword  /-/web/search?q=keywords:synthetic"
  "package-2000    /-/web/package/synth-big"
  "package-2000-v  /-/web/package/synth-big/v/1.0.0"
  "package-small   /-/web/package/synth-1"
)
for spec in "${pages[@]}"; do
  read -r _ path <<< "$spec"
  status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: text/html' "$url$path")
  [[ "$status" == 200 ]] || { echo "GET $path answered $status" >&2; exit 1; }
done
echo "# web.sh ($(date -u +%FT%TZ)), ROUNDS=$ROUNDS, DURATION=${DURATION}s, wrk -c1"
printf 'page\tround\treq/s\tp50_ms\tp99_ms\tmax_ms\n'
for round in $(seq 1 "$ROUNDS"); do
  for spec in "${pages[@]}"; do
    read -r page path <<< "$spec"
    WRK_ACCEPT="text/html" wrk -t1 -c1 -d"${DURATION}s" -s "$shared/read.lua" "$url$path" \
      | awk -v page="$page" -v round="$round" -F'\t' \
          '$1 == "RESULT" { printf "%s\t%s\t%s\t%s\t%s\t%s\n", page, round, $2, $3, $4, $5 }'
  done
  # The first search after a change: p50, p99 (of FIRSTS) and max of curl's total time.
  for _ in $(seq 1 "$FIRSTS"); do
    "$registry" block bench-search-first --data-dir "$work/data" --reason bench -q
    "$registry" unblock bench-search-first --data-dir "$work/data" -q
    curl -s -o /dev/null -w '%{time_total}\n' -H 'Accept: text/html' "$url/-/web/search?q=synth"
  done | sort -n | awk -v round="$round" '{ t[NR] = $1 * 1000 }
    END { printf "search-first\t%s\t-\t%.3f\t%.3f\t%.3f\n", round, t[int((NR + 1) / 2)],
          t[int(NR * 0.99 + 0.999)], t[NR] }'
  for i in $(seq 1 "$FIRSTS"); do
    "$registry" dist-tag add "synth-$i@1.0.0" bench-first --data-dir "$work/data" > /dev/null
    curl -s -o /dev/null -w '%{time_total}\n' -H 'Accept: text/html' "$url/-/web/search?q=synth"
    "$registry" dist-tag rm "synth-$i" bench-first --data-dir "$work/data" > /dev/null
  done | sort -n | awk -v round="$round" '{ t[NR] = $1 * 1000 }
    END { printf "search-first-doc\t%s\t-\t%.3f\t%.3f\t%.3f\n", round, t[int((NR + 1) / 2)],
          t[int(NR * 0.99 + 0.999)], t[NR] }'
done
