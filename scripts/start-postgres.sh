#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on loopback for the internal/store
# tests and print its DSN on stdout:
#
#   postgres://postgres@127.0.0.1:55432/tdproof_test?sslmode=disable
#
# Usage (what .ci/run does):
#
#   TDPROOF_TEST_POSTGRES_DSN="$(scripts/start-postgres.sh)"
#   export TDPROOF_TEST_POSTGRES_DSN
#
# - Installs Debian's `postgresql` package when initdb/pg_ctl are missing
#   (needs root and apt-get; Debian keeps the binaries in
#   /usr/lib/postgresql/<version>/bin).
# - The cluster lives in $TDPROOF_PG_DIR (default ${TMPDIR:-/tmp}/tdproof-pg-<port>),
#   owned by the `postgres` user when run as root, trust authentication,
#   listening on 127.0.0.1 only, its unix socket inside that directory.
#   It is a test cluster: fsync and synchronous_commit are off.
# - Port: $TDPROOF_PG_PORT (default 55432).
# - Idempotent: when the cluster is already running it only makes sure the
#   database exists and prints the DSN again.
# - Stop it with: pg_ctl -D "$TDPROOF_PG_DIR" stop (as the postgres user
#   when run as root), or remove the directory after stopping.
#
# Diagnostics go to stderr; stdout carries only the DSN.
set -euo pipefail

port="${TDPROOF_PG_PORT:-55432}"
dir="${TDPROOF_PG_DIR:-${TMPDIR:-/tmp}/tdproof-pg-$port}"
db="tdproof_test"
log() { echo "start-postgres: $*" >&2; }

find_bindir() {
  local d
  # Debian: highest installed major version first.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
      echo "$d"
      return 0
    fi
  done
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  return 1
}

if ! bindir="$(find_bindir)"; then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    log "initdb/pg_ctl not found; install PostgreSQL (Debian: apt-get install postgresql) or run as root"
    exit 1
  fi
  log "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -qq -o APT::Sandbox::User=root update >&2
  apt-get -qq -o APT::Sandbox::User=root install -y postgresql >&2
  bindir="$(find_bindir)" || { log "postgresql installed but initdb/pg_ctl not found"; exit 1; }
fi
log "using $bindir ($("$bindir/postgres" --version))"

# Run a PostgreSQL binary as the cluster owner: the postgres user when we are
# root (the server refuses to run as root), else ourselves.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

psql_q() {
  "$bindir/psql" -X -q -t -A -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$1"
}

if ! as_owner "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
    log "port $port is taken by a server that is not the cluster in $dir; set TDPROOF_PG_PORT"
    exit 1
  fi
  if [[ ! -f "$dir/PG_VERSION" ]]; then
    log "creating cluster in $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [[ $(id -u) -eq 0 ]]; then
      chown postgres:postgres "$dir"
    fi
    as_owner "$bindir/initdb" -D "$dir" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >&2 \
      || as_owner "$bindir/initdb" -D "$dir" -A trust -U postgres -E UTF8 --locale=C >&2
    as_owner tee -a "$dir/postgresql.conf" >/dev/null <<EOF
# tdproof test cluster (scripts/start-postgres.sh)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  fi
  log "starting server on 127.0.0.1:$port"
  as_owner "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >&2 || {
    log "server did not start; last lines of $dir/server.log:"
    tail -n 20 "$dir/server.log" >&2 || true
    exit 1
  }
else
  log "cluster in $dir already running"
fi

for _ in $(seq 1 50); do
  "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" && break
  sleep 0.2
done

if [[ "$(psql_q "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]]; then
  log "creating database $db"
  psql_q "CREATE DATABASE $db" >&2
fi

echo "postgres://postgres@127.0.0.1:$port/$db?sslmode=disable"
