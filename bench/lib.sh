# bench/lib.sh — sourced by the bench scripts that run our release binary beside the shared
# harness; `here` (the script's own directory) must be set first. Sets `shared` (SHARED, by
# default ../shared/bench next to this checkout) and `registry` (REGISTRY, by default
# target/release/registry; the script stops if it is not built), and defines:
#   wait_up URL                    waits (10 s at most) until URL/-/ping answers, else fails
#   serve_ours PORT DATA FLAGS…    starts our registry on 127.0.0.1:PORT with its data in DATA
#                                  and its log in DATA.log, waits for it, prints its PID
#   median                         the median of the numbers on stdin
#   samples FILE LABEL KIND        the seconds of FILE's "LABEL KIND seconds" lines, in order
#   ratios FILE A B KIND           the per-round ratios of A's KIND samples to B's
shared="$(cd "${SHARED:-$here/../../shared/bench}" && pwd)"
registry="$(cd "$here/.." && pwd)/${REGISTRY:-target/release/registry}"
[[ -x "$registry" ]] || { echo "build the release binary first: cargo build --release" >&2; exit 1; }

wait_up() {
  for _ in $(seq 1 200); do curl -s -o /dev/null "$1/-/ping" && return 0; sleep 0.05; done
  echo "$1 did not come up" >&2; return 1
}
serve_ours() {
  local port=$1 data=$2; shift 2
  "$registry" serve --listen "127.0.0.1:$port" --data-dir "$data" --log-level warn "$@" \
    > "$data.log" 2>&1 &
  local pid=$!
  wait_up "http://127.0.0.1:$port" >&2
  echo "$pid"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
samples() { awk -v l="$2" -v k="$3" '$1==l && $2==k {print $3}' "$1"; }
ratios() { paste <(samples "$1" "$2" "$4") <(samples "$1" "$3" "$4") | awk '{printf "%.2f\n", $1/$2}'; }
