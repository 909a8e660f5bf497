#!/usr/bin/env bash
# Runs "$@" with TEST_DATABASE_URL pointing at a PostgreSQL server where the tests may
# create databases: the one on 127.0.0.1:5432 when it answers, else a throw-away cluster
# (pg_virtualenv, or initdb/pg_ctl on a spare port), installing PostgreSQL as root on
# Debian when it is missing.
set -euo pipefail

if [ -n "${TEST_DATABASE_URL:-}" ]; then exec "$@"; fi

if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432 \
   && psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  export TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
  exec "$@"
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing PostgreSQL for the tests..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
fi

if command -v pg_virtualenv >/dev/null; then
  # pg_virtualenv exports PGHOST/PGPORT/PGUSER/PGPASSWORD for its temporary cluster.
  exec pg_virtualenv -- bash -c 'export TEST_DATABASE_URL="postgresql+psycopg://${PGUSER}:${PGPASSWORD}@${PGHOST:-localhost}:${PGPORT}/postgres"; exec "$@"' _ "$@"
fi

bindir=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
if [ ! -x "$bindir/initdb" ]; then
  echo "No PostgreSQL available: the PostgreSQL tests will be skipped." >&2
  exec "$@"
fi
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
runas=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system postgres
  chown postgres "$dir"
  runas=(runuser -u postgres --)
fi
"${runas[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
"${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -w start >/dev/null
trap '"${runas[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null; rm -rf "$dir"' EXIT
export TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
"$@"
