#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (issue 14), on 127.0.0.1 and an unused port.
#
#   eval "$(bash scripts/pg_test_cluster.sh start)"   # exports STEPFLOW_TEST_PG_URL and STEPFLOW_TEST_PG_DIR
#   bash scripts/pg_test_cluster.sh stop "$STEPFLOW_TEST_PG_DIR"
#
# Installs Debian's `postgresql` when no server binary is found (needs root and apt). PostgreSQL
# refuses to run as root, so the cluster belongs to the `postgres` user (created by the package)
# and is started with `runuser`. Messages go to stderr; stdout carries only the `export` lines.
# With STEPFLOW_TEST_PG_URL already set (an existing server), `start` prints nothing and does nothing.
set -euo pipefail

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/pg_ctl" && -x "$d/initdb" ]] && { echo "$d"; return 0; }
  done
  return 1
}

start() {
  if [[ -n "${STEPFLOW_TEST_PG_URL:-}" ]]; then
    echo "pg_test_cluster: using STEPFLOW_TEST_PG_URL as set" >&2
    return 0
  fi
  local bin
  if ! bin=$(find_bin); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      echo "pg_test_cluster: installing postgresql from Debian's packages" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
      bin=$(find_bin)
    else
      echo "pg_test_cluster: no PostgreSQL server binaries and no root to install them" >&2
      return 1
    fi
  fi
  local runas=()
  if [[ $(id -u) -eq 0 ]]; then runas=(runuser -u postgres --); fi
  local dir
  dir=$(mktemp -d /tmp/stepflow-pg.XXXXXX)
  [[ ${#runas[@]} -gt 0 ]] && chown postgres "$dir"
  "${runas[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; return 1; }
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  "${runas[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >&2 ||
    { cat "$dir/server.log" >&2; return 1; }
  echo "pg_test_cluster: PostgreSQL on 127.0.0.1:$port (data in $dir)" >&2
  echo "export STEPFLOW_TEST_PG_URL=postgres://postgres@127.0.0.1:$port/postgres"
  echo "export STEPFLOW_TEST_PG_DIR=$dir"
}

stop() {
  local dir="${1:-${STEPFLOW_TEST_PG_DIR:-}}"
  [[ -n "$dir" && -d "$dir/data" ]] || return 0
  local bin runas=()
  bin=$(find_bin) || return 0
  if [[ $(id -u) -eq 0 ]]; then runas=(runuser -u postgres --); fi
  "${runas[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
