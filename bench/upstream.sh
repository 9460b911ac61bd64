#!/usr/bin/env bash
# bench/upstream.sh CORPUS_DIR [WORKDIR] — npm install through our upstream proxy, against
# installing from the upstream directly and through Verdaccio 6, all in one run.
#
# The upstream is nginx serving a static copy of the corpus (the physical limit), and the same
# copy behind bench/delay-proxy.mjs adding DELAY_MS to every request (how a public registry
# across the internet answers). For each upstream:
#   direct      install.sh (RUNS=1) against the upstream itself
#   ours        a fresh `registry serve --upstream` with EMPTY storage, then install.sh with
#               RUNS=1 (its cold run fills the proxy; its warm run revalidates)
#   verdaccio   the same with a fresh Verdaccio (UPLINK=…)
# RUNS rounds, each installing once from every setup in turn; the ratios are per round.
# plus install.sh against our registry holding the corpus itself (the local reference for the
# warm proxied install), and compare.sh of proxied vs local packument reads.
#
# Needs: the release binary (cargo build --release), nginx, wrk, bc, node, and the shared
# harness (SHARED=…/shared/bench: install.sh, load.mjs, nginx/, verdaccio/, read.sh,
# compare.sh) with Verdaccio installed by its verdaccio/install.sh.
# Ports 4890-4897 on 127.0.0.1. Every server is stopped by its PID on exit.
# Env: RUNS=3 DELAY_MS=30 SHARED=../shared/bench REGISTRY=target/release/registry SKIP_READS=1
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$(cd "${1:?usage: upstream.sh CORPUS_DIR [WORKDIR]}" && pwd)"
work="${2:-/tmp/bench-upstream}"
RUNS="${RUNS:-3}"; DELAY_MS="${DELAY_MS:-30}"
. "$here/lib.sh"
rm -rf "$work"; mkdir -p "$work"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "# upstream.sh ($(date -u +%FT%TZ)), RUNS=$RUNS, DELAY_MS=$DELAY_MS"
# 1. Our registry with the corpus published (the local reference), snapshotted twice for nginx:
#    tarball URLs pointing at nginx itself, and at the delaying proxy in front of it.
mkdir -p "$work/local"
local_pid=$(serve_ours 4890 "$work/local/data" --registration open); pids+=("$local_pid")
node "$shared/load.mjs" --registry http://127.0.0.1:4890 --corpus "$corpus" -c 4 | tail -2
node "$shared/nginx/snapshot.mjs" http://127.0.0.1:4890 "$work/static" "$corpus" \
  --public-url http://127.0.0.1:4891 > /dev/null
node "$shared/nginx/snapshot.mjs" http://127.0.0.1:4890 "$work/static-delayed" "$corpus" \
  --public-url http://127.0.0.1:4892 > /dev/null
nginx_pid=$("$shared/nginx/start.sh" 4891 "$work/static"); pids+=("$nginx_pid")
nginx2_pid=$("$shared/nginx/start.sh" 4893 "$work/static-delayed"); pids+=("$nginx2_pid")
node "$here/delay-proxy.mjs" 4892 http://127.0.0.1:4893 "$DELAY_MS" > "$work/delay.log" 2>&1 &
pids+=("$!"); sleep 0.3

run_install() { # $1 = label, $2 = URL, $3 = runs; appends "label cold|warm seconds" to samples
  RUNS="$3" "$shared/install.sh" "$2" | tee -a "$work/install.log" \
    | awk -v l="$1" '/^(cold|warm) run/ {print l, $1, $4}' >> "$work/samples"
}
proxied() { # $1 = label, $2 = upstream URL, $3 = ours|verdaccio, $4 = round: one fresh proxy
  local dir="$work/$1-$4" pid
  mkdir -p "$dir"
  if [[ $3 == ours ]]; then
    pid=$(serve_ours 4894 "$dir/data" --upstream "$2")
  else
    pid=$(UPLINK="$2" LOG_LEVEL=warn "$shared/verdaccio/start.sh" 4894 "$dir")
  fi
  run_install "$1" http://127.0.0.1:4894 1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:4894/ || break; sleep 0.05; done
}

# Rounds interleave every setup (this machine's speed drifts by 2x within minutes): each round
# installs once from each, so that a round's ratios compare like with like.
: > "$work/samples"
delayed="nginx+${DELAY_MS}ms"
for round in $(seq 1 "$RUNS"); do
  run_install local http://127.0.0.1:4890 1
  run_install nginx http://127.0.0.1:4891 1
  proxied ours-nginx http://127.0.0.1:4891 ours "$round"
  proxied verdaccio-nginx http://127.0.0.1:4891 verdaccio "$round"
  run_install "$delayed" http://127.0.0.1:4892 1
  proxied ours-delayed http://127.0.0.1:4892 ours "$round"
  proxied verdaccio-delayed http://127.0.0.1:4892 verdaccio "$round"
done

echo
echo "label                cold median s  warm median s   per round: cold / warm"
for label in local nginx ours-nginx verdaccio-nginx "$delayed" ours-delayed verdaccio-delayed; do
  printf '%-20s %10s %14s      %s / %s\n' "$label" \
    "$(samples "$work/samples" "$label" cold | median)" "$(samples "$work/samples" "$label" warm | median)" \
    "$(echo $(samples "$work/samples" "$label" cold))" "$(echo $(samples "$work/samples" "$label" warm))"
done
echo
echo "ratio (median of per-round ratios)      cold    warm"
for pair in "ours-nginx nginx" "verdaccio-nginx nginx" "ours-nginx verdaccio-nginx" \
            "ours-nginx local" "ours-delayed $delayed" "verdaccio-delayed $delayed" \
            "ours-delayed verdaccio-delayed"; do
  set -- $pair
  printf '%-38s %6s  %6s\n' "$1 / $2" "$(ratios "$work/samples" "$1" "$2" cold | median)" \
    "$(ratios "$work/samples" "$1" "$2" warm | median)"
done

if [[ "${SKIP_READS:-0}" != 1 ]]; then
  # 2. Cached proxied packument reads against local ones: a proxy with a warm cache.
  pid=$(serve_ours 4895 "$work/reads-proxy" --upstream http://127.0.0.1:4891); pids+=("$pid")
  RUNS=1 "$shared/install.sh" http://127.0.0.1:4895 > /dev/null
  echo
  ONLY="a_full b_abbrev c_tarball" LABEL_A=local LABEL_B=proxied \
    "$shared/compare.sh" http://127.0.0.1:4890 http://127.0.0.1:4895 2
fi
