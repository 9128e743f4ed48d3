#!/usr/bin/env bash
# End-to-end registration tests on PostgreSQL: installs PostgreSQL when missing (Debian), starts a
# private cluster on a free loopback port in a temporary directory, runs the scenarios of
# crates/registration/tests/e2e_postgres.rs against it, and stops and removes the cluster.
#
#   bash scripts/e2e-postgres.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends postgresql >/dev/null
fi
PG="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
DIR="$(mktemp -d)"
chown postgres "$DIR"
stop() {
    su postgres -c "$PG/pg_ctl -D $DIR/data -m fast -w stop" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap stop EXIT
su postgres -c "$PG/initdb -D $DIR/data -A trust -U postgres" >/dev/null
su postgres -c "$PG/pg_ctl -D $DIR/data -o '-k $DIR -p $PORT -h 127.0.0.1' -l $DIR/log -w start" >/dev/null

export MYNACARD_E2E_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
cargo test -p mynacard-registration --features postgres-e2e --test e2e_postgres
