#!/usr/bin/env bash
# Runs the end-to-end tests against a throwaway PostgreSQL cluster (pg_virtualenv from
# postgresql-common), proving nothing in the controller is SQLite-only.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v pg_virtualenv >/dev/null 2>&1; then
  echo "PostgreSQL end-to-end run NOT done: pg_virtualenv (postgresql + postgresql-common) is not installed" >&2
  exit 0
fi
exec pg_virtualenv bash -c '
  export EBC_TEST_POSTGRES="postgresql+asyncpg://${PGUSER}:${PGPASSWORD}@127.0.0.1:${PGPORT}/"
  .venv/bin/pytest -q -p no:cacheprovider tests/e2e
'
