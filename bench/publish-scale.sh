#!/usr/bin/env bash
# bench/publish-scale.sh CORPUS_DIR [WORKDIR] — does a publish get slower as the registry grows?
#
# Publishes the whole corpus, in its order, into a fresh registry with load.mjs (-c C, a trace
# line per publish) and compares the latency of the publishes around the 1,000th with that of
# the last 1,000: with the shared harness's `synth.sh DIR 10000 5` corpus, the 50,000th
# version lands in a registry of 10,000 packages. Also prints the mean latency of every tenth
# of the run, so that growth shows as a trend and not only as two windows.
#
# Needs: the release binary (cargo build --release), node, and the shared harness
# (SHARED=…/shared/bench: load.mjs). Port 4898 on 127.0.0.1; the server is stopped by its PID.
# Env: C=8 SHARED=../shared/bench REGISTRY=target/release/registry
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$(cd "${1:?usage: publish-scale.sh CORPUS_DIR [WORKDIR]}" && pwd)"
work="${2:-/tmp/bench-publish-scale}"
C="${C:-8}"
. "$here/lib.sh"
rm -rf "$work"; mkdir -p "$work"
pid=$(serve_ours 4898 "$work/data" --registration open)
trap 'kill "$pid" 2>/dev/null || true' EXIT

echo "# publish-scale.sh ($(date -u +%FT%TZ)), C=$C, $(wc -l < "$corpus/index.tsv") versions"
node "$shared/load.mjs" --registry http://127.0.0.1:4898 --corpus "$corpus" -c "$C" \
  --trace "$work/trace.tsv" | grep -E '^(published|latency)'

# trace.tsv: seq, t_start_ms, ms, status, … (seq counts from 0 in the corpus's order)
window() { # $1 $2 = first and last seq; prints "p50 … p90 … mean …"
  awk -F'\t' -v a="$1" -v b="$2" 'NR > 1 && $1 >= a && $1 <= b { print $3 }' "$work/trace.tsv" |
    sort -n | awk '{ x[NR] = $1; s += $1 } END {
      printf "p50 %.1f ms  p90 %.1f ms  mean %.1f ms  (%d publishes)\n",
        x[int((NR + 1) / 2)], x[int(NR * 0.9)], s / NR, NR }'
}
total=$(($(wc -l < "$work/trace.tsv") - 1))
early=$(window 900 1099)
late=$(window $((total - 1000)) $((total - 1)))
echo "around the 1,000th: $early"
echo "the last 1,000:     $late"
awk -v e="$early" -v l="$late" 'BEGIN {
  split(e, a, " "); split(l, b, " ");
  printf "ratio last / 1,000th: p50 %.2f  mean %.2f\n", b[2] / a[2], b[8] / a[8] }'
echo "mean latency by tenth of the run:"
awk -F'\t' -v n="$total" 'NR > 1 { t = int($1 * 10 / n); s[t] += $3; c[t]++ }
  END { for (i = 0; i < 10; i++) printf "  %2d%%: %.1f ms\n", i * 10, s[i] / c[i] }' "$work/trace.tsv"
