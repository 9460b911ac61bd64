#!/usr/bin/env bash
# Throwaway services for tests and local trials of the scaled-out setup:
#
#   contrib/services.sh up DIR     start PostgreSQL and an S3-compatible server on 127.0.0.1
#                                  (installing them when missing), create the database and the
#                                  bucket, wait until both answer, print `export …` lines
#   contrib/services.sh down DIR   stop both; safe to repeat, and on a DIR never started
#
# Everything lives in DIR (data, logs, ports, pids); `up` on a DIR whose services run prints the
# same exports again. Typical use:  eval "$(contrib/services.sh up target/test-services/run)"
#
# The S3 server is s3s-fs (the s3s project's file-system-backed S3 server, a Rust crate): it
# builds from crates.io in about two minutes on two cores and starts in milliseconds, where
# Garage takes far longer to build and needs a cluster layout before it serves. It is installed
# once into $REGISTRY_SERVICES_CACHE (default: target/test-services/ of this repository).
# s3s-fs names each object's metadata file by the base64 of its key, so keys longer than about
# 160 bytes fail there (S3 allows 1024): keep prefixes under 25 characters with it.
# PostgreSQL is Debian's `postgresql` package (apt-get when missing; sudo when not root); the
# server refuses to run as root, so as root it runs as the `postgres` user.
set -euo pipefail

S3S_VERSION=0.14.1
BUCKET=registry
PREFIX=blobs
ACCESS_KEY=registry-test
SECRET_KEY=registry-test-secret
WAIT_SECS=30

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${REGISTRY_SERVICES_CACHE:-$repo/target/test-services}"

die() { echo "services.sh: $*" >&2; exit 1; }
usage() { die "usage: $0 up|down DIR"; }

[ $# -eq 2 ] || usage
command="$1"
mkdir -p "$2"
dir="$(cd "$2" && pwd)"

as_root=""
if [ "$(id -u)" -ne 0 ]; then as_root="sudo -E"; fi

# The port FILE recorded, if nothing listens there now (so that an `up` after a `down` comes
# back where clients expect it); else one the kernel picks. The short race is retried by `up`.
pick_port() {
  if [ -f "$1" ] && ! answers "$(cat "$1")"; then
    cat "$1"
    rm -f "$1"
    return
  fi
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pg_bin() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -z "$found" ] || [ ! -x "$found/pg_ctl" ]; then
    echo "--- installing postgresql (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    $as_root apt-get update >&2
    $as_root apt-get install -y --no-install-recommends postgresql >&2
    found="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  echo "$found"
}

# Runs a PostgreSQL program as the user that owns the cluster.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

s3s_bin() {
  local bin="$cache/bin/s3s-fs"
  if [ ! -x "$bin" ]; then
    command -v cargo >/dev/null || die "cargo is needed to install s3s-fs"
    echo "--- installing s3s-fs $S3S_VERSION into $cache (cargo install, once)" >&2
    # Its own target dir: a CARGO_TARGET_DIR inherited from a `cargo test` must not be shared.
    env -u CARGO_TARGET_DIR cargo install --locked --quiet "s3s-fs@$S3S_VERSION" \
      --features binary --root "$cache" --target-dir "$cache/build" >&2
  fi
  echo "$bin"
}

start_postgres() {
  local bin port data="$dir/pg/data"
  bin="$(pg_bin)"
  mkdir -p "$dir/pg"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir/pg"
    # The server's user must reach DIR: every parent needs search permission for it.
    runuser -u postgres -- test -x "$dir/pg" ||
      die "the postgres user cannot reach $dir (a parent directory is not searchable)"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$data" -U registry -A trust -E UTF8 >"$dir/pg/initdb.log" 2>&1 ||
      die "initdb failed: see $dir/pg/initdb.log"
  fi
  if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    return
  fi
  for _ in 1 2 3; do
    port="$(pick_port "$dir/pg.port")"
    echo "$port" >"$dir/pg.port"
    if as_pg "$bin/pg_ctl" -D "$data" -l "$dir/pg/server.log" -w -t "$WAIT_SECS" \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/pg" start >/dev/null 9>&-; then
      break
    fi
  done
  as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 ||
    die "PostgreSQL did not start: see $dir/pg/server.log"
  port="$(cat "$dir/pg.port")"
  if ! as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U registry -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'registry'" | grep -q 1; then
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U registry registry ||
      die "cannot create the database"
  fi
}

start_s3() {
  local bin port
  bin="$(s3s_bin)"
  # s3s-fs keeps a bucket as a directory under its root: creating it is the mkdir.
  mkdir -p "$dir/s3/$BUCKET"
  if alive "$dir/s3.pid"; then
    return
  fi
  for _ in 1 2 3; do
    port="$(pick_port "$dir/s3.port")"
    echo "$port" >"$dir/s3.port"
    setsid "$bin" --host 127.0.0.1 --port "$port" --access-key "$ACCESS_KEY" \
      --secret-key "$SECRET_KEY" "$dir/s3" >"$dir/s3.log" 2>&1 </dev/null 9>&- &
    echo $! >"$dir/s3.pid"
    for _ in $(seq $((WAIT_SECS * 10))); do
      if answers "$port"; then return; fi
      alive "$dir/s3.pid" || break
      sleep 0.1
    done
    kill "$(cat "$dir/s3.pid")" 2>/dev/null || true
  done
  die "s3s-fs did not start: see $dir/s3.log"
}

stop_postgres() {
  local data="$dir/pg/data" bin
  [ -f "$data/PG_VERSION" ] || return 0
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [ -n "$bin" ] || return 0
  if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$data" -m fast -w -t "$WAIT_SECS" stop >/dev/null ||
      die "PostgreSQL did not stop: see $dir/pg/server.log"
  fi
}

stop_s3() {
  if alive "$dir/s3.pid"; then
    local pid
    pid="$(cat "$dir/s3.pid")"
    kill "$pid"
    for _ in $(seq $((WAIT_SECS * 10))); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && die "s3s-fs (pid $pid) did not stop"
  fi
  rm -f "$dir/s3.pid"
}

case "$command" in
  up)
    # One `up` at a time per DIR: test binaries running in parallel share one set.
    exec 9>"$dir/lock"
    flock -w 600 9 || die "another services.sh holds $dir/lock"
    # The servers must not inherit the lock (fd 9): they outlive this script.
    start_postgres
    start_s3
    {
      echo "export REGISTRY_DATABASE_URL=postgres://registry@127.0.0.1:$(cat "$dir/pg.port")/registry"
      echo "export REGISTRY_BLOBS_URL=s3://$BUCKET/$PREFIX"
      echo "export REGISTRY_S3_ENDPOINT=http://127.0.0.1:$(cat "$dir/s3.port")"
      echo "export REGISTRY_S3_REGION=us-east-1"
      echo "export REGISTRY_S3_PATH_STYLE=true"
      echo "export AWS_ACCESS_KEY_ID=$ACCESS_KEY"
      echo "export AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
    } | tee "$dir/env"
    ;;
  down)
    exec 9>"$dir/lock"
    flock -w 600 9 || die "another services.sh holds $dir/lock"
    stop_s3
    stop_postgres
    rm -f "$dir/env"
    ;;
  *) usage ;;
esac
