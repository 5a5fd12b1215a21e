#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on the addresses the kit uses, starting (or installing) them
# when this machine can, and create the database the reference server writes to.
# Prints one line per service; exits non-zero with the exact next step when it cannot fix things.
set -euo pipefail

PG_HOST=${PGHOST_KIT:-127.0.0.1}
PG_PORT=${PGPORT_KIT:-5432}
REDIS_PORT=${REDIS_PORT_KIT:-6379}
DB_NAME=${CCS_DB_NAME:-ccs}

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
  if ! have apt-get; then
    echo "MISSING $* and no apt-get here: install them, or run 'make env-up' on a machine with Docker" >&2
    exit 1
  fi
  echo "installing $* with apt-get"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

# Client tools and build headers first: pg_isready/redis-cli to probe, pg_config to build psycopg2.
have pg_isready && have pg_config || apt_install postgresql-client libpq-dev
have redis-cli || apt_install redis-tools

if ! pg_up; then
  ls /etc/postgresql/*/main >/dev/null 2>&1 || apt_install postgresql
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
fi
if pg_up; then
  echo "OK   PostgreSQL $PG_HOST:$PG_PORT"
else
  echo "FAIL PostgreSQL $PG_HOST:$PG_PORT is not answering; start it or run 'make env-up'" >&2
  exit 1
fi

if ! redis_up; then
  have redis-server || apt_install redis-server
  echo "starting Redis on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
  for _ in $(seq 1 30); do redis_up && break; sleep 0.2; done
fi
if redis_up; then
  echo "OK   Redis 127.0.0.1:$REDIS_PORT"
else
  echo "FAIL Redis 127.0.0.1:$REDIS_PORT is not answering; start it or run 'make env-up'" >&2
  exit 1
fi

# The private PostgreSQL of the fault suites needs the server binaries, not only the client.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql

if ! psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
  createdb -h "$PG_HOST" -p "$PG_PORT" -U postgres "$DB_NAME"
  echo "created database $DB_NAME"
fi
