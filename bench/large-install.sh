#!/usr/bin/env bash
# bench/large-install.sh CORPUS_DIR [WORKDIR] — cold and warm `npm install` of the large corpus
# (bench/large-corpus.sh: 957 tarballs) from our registry, from nginx serving a static copy of
# our bytes, and from Verdaccio 6 holding the same packages, in one run.
#
# Each registry is loaded once with load.mjs; then RUNS rounds, each running the shared
# install.sh with RUNS=1 (one cold install with an empty npm cache, one warm with that cache and
# --prefer-online) against every registry in turn, so that a round compares like with like on
# this drifting machine. Prints per-registry medians and the medians of per-round ratios.
#
# Needs: the release binary (cargo build --release), nginx, node, bc, and the shared harness
# (SHARED=…/shared/bench: install.sh, load.mjs, nginx/, verdaccio/ with Verdaccio installed by
# its verdaccio/install.sh). Ports 4886-4888 on 127.0.0.1; servers are stopped by their PIDs.
# Env: RUNS=3 SHARED=../shared/bench REGISTRY=target/release/registry
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$(cd "${1:?usage: large-install.sh CORPUS_DIR [WORKDIR]}" && pwd)"
work="${2:-/tmp/bench-large-install}"
RUNS="${RUNS:-3}"
. "$here/lib.sh"
rm -rf "$work"; mkdir -p "$work"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "# large-install.sh ($(date -u +%FT%TZ)), RUNS=$RUNS, $(wc -l < "$corpus/index.tsv") versions"
pids+=("$(serve_ours 4886 "$work/ours" --registration open)")
node "$shared/load.mjs" --registry http://127.0.0.1:4886 --corpus "$corpus" -c 8 2>/dev/null | head -1
node "$shared/nginx/snapshot.mjs" http://127.0.0.1:4886 "$work/static" "$corpus" \
  --public-url http://127.0.0.1:4887 > /dev/null
pids+=("$("$shared/nginx/start.sh" 4887 "$work/static")")
pids+=("$(JWT=1 LOG_LEVEL=warn "$shared/verdaccio/start.sh" 4888 "$work/verdaccio")")
node "$shared/load.mjs" --registry http://127.0.0.1:4888 --corpus "$corpus" -c 8 2>/dev/null | head -1

: > "$work/samples"
for round in $(seq 1 "$RUNS"); do
  for setup in "ours 4886" "nginx 4887" "verdaccio 4888"; do
    set -- $setup
    RUNS=1 "$shared/install.sh" "http://127.0.0.1:$2" "$corpus/root-package.json" \
      | tee -a "$work/install.log" | awk -v l="$1" '/^(cold|warm) run/ {print l, $1, $4}' \
      >> "$work/samples"
  done
  echo "round $round/$RUNS done" >&2
done

echo "registry     cold median s  warm median s   per round: cold / warm"
for label in ours nginx verdaccio; do
  printf '%-12s %13s %14s   %s / %s\n' "$label" "$(samples "$work/samples" "$label" cold | median)" \
    "$(samples "$work/samples" "$label" warm | median)" "$(echo $(samples "$work/samples" "$label" cold))" \
    "$(echo $(samples "$work/samples" "$label" warm))"
done
echo "ratio (median of per-round ratios)   cold    warm"
for pair in "ours nginx" "ours verdaccio"; do
  set -- $pair
  printf '%-36s %5s  %6s\n' "$1 / $2" "$(ratios "$work/samples" "$1" "$2" cold | median)" \
    "$(ratios "$work/samples" "$1" "$2" warm | median)"
done
grep -h "added" "$work/install.log" | head -1
