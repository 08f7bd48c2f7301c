# A throwaway PostgreSQL cluster for tests and local stacks: Debian's server binaries (installed
# when missing), `initdb` into a temporary directory, `pg_ctl` on a free loopback port, stopped
# and removed by `stop_throwaway_postgres` (callers put it in their EXIT trap). No system
# service, nothing left behind. As root, the cluster runs as the `postgres` user (initdb refuses
# root), created by Debian's package. Sourced, not run; needs Scripts/lib/setup.sh.
#
# Usage: start_throwaway_postgres [PARENT_DIR, default /tmp] → sets PG_URL (postgres://postgres@127.0.0.1:PORT/postgres),
#        PG_DIR, PG_PORT, PG_BIN.

pg_bin_dir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

ensure_postgres() {
  PG_BIN="$(pg_bin_dir)" || { apt_install postgresql; PG_BIN="$(pg_bin_dir)"; }
}

# Runs a PostgreSQL server binary as the cluster's owner.
pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_throwaway_postgres() {
  ensure_postgres
  PG_DIR="$(mktemp -d "${1:-/tmp}/jframe-pg.XXXXXX")"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$PG_DIR"
  PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  # Durable as in production (fsync, synchronous_commit on); enough connections for tests that
  # run many stores at once.
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on -c synchronous_commit=on" >/dev/null \
    || { cat "$PG_DIR/server.log" >&2; return 1; }
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  export PG_URL PG_DIR PG_PORT PG_BIN
}

stop_throwaway_postgres() {
  [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ] || return 0
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
