#!/bin/sh
# The entry point of the PostgreSQL container (Dockerfile, target postgres): makes the cluster
# in $PGDATA on first start (user $POSTGRES_USER, default cqrs, with $POSTGRES_PASSWORD; password
# authentication from the network), then runs the server in the foreground, listening on 5432.
set -eu
bin=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
  password_file="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
  "$bin/initdb" -D "$PGDATA" -U "${POSTGRES_USER:-cqrs}" --pwfile="$password_file" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$password_file"
  printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
