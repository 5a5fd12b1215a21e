#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on the addresses the kit uses, starting (or installing) them
# when this machine can, find a way into PostgreSQL that needs no prompt, and create the database
# the reference server writes to.
#
# The way in, first that works:
#   1. DATABASE_URL from the environment (yours: checked, never changed);
#   2. DATABASE_URL from .ccs-env (written by an earlier run of this script);
#   3. postgres@PGHOST_KIT:PGPORT_KIT without a password (a cluster that trusts local users;
#      saved in .ccs-env when that is not the kit's default 127.0.0.1:5432);
#   4. on a local cluster with password authentication (Debian's defaults: peer on the socket,
#      scram-sha-256 on 127.0.0.1): the kit's own role `ccs` with a generated password and
#      CREATEDB, made as the postgres OS user over the socket, saved as DATABASE_URL in .ccs-env
#      (git-ignored, mode 600). Every part of the kit reads that file (keywords/ccskit/config.py).
# Nothing here waits on a prompt: psql runs with -w and stdin from /dev/null, sudo with -n.
# Prints one line per service; exits non-zero with the exact next step when it cannot fix things.
#
# PGHOST_KIT / PGPORT_KIT pick the cluster (default 127.0.0.1:5432); CCS_ENV_FILE moves .ccs-env.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_HOST=${PGHOST_KIT:-127.0.0.1}
PG_PORT=${PGPORT_KIT:-5432}
REDIS_PORT=${REDIS_PORT_KIT:-6379}
DB_NAME=${CCS_DB_NAME:-ccs}
KIT_ROLE=${CCS_DB_ROLE:-ccs}
ENV_FILE=${CCS_ENV_FILE:-$ROOT/.ccs-env}
# keywords/ccskit/config.py's default: the kit needs no .ccs-env for it.
KIT_DEFAULT_URL=postgresql://postgres@127.0.0.1:5432/ccs
export PGCONNECT_TIMEOUT=5

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

apt_install() {
  if ! have apt-get; then
    echo "MISSING $* and no apt-get here: install them, or run 'make env-up' on a machine with Docker" >&2
    exit 1
  fi
  echo "installing $* with apt-get"
  as_root apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null >/dev/null
}

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
local_pg() { case "$PG_HOST" in 127.0.0.1 | localhost | ::1) return 0 ;; *) return 1 ;; esac; }

# psql that can never prompt: -w (no password prompt), no psqlrc, stdin from /dev/null.
psql_url() { psql -w -X -q -v ON_ERROR_STOP=1 "$@" </dev/null; }
url_works() { [ -n "$1" ] && psql_url -d "$(db_url "$1" postgres)" -tAc "SELECT 1" >/dev/null 2>&1; }
# The same URL with another database name.
db_url() { printf '%s\n' "$1" | sed -E "s#^(postgres(ql)?://[^/]*)(/[^?]*)?#\1/$2#"; }

# The cluster (version and name) that owns PG_PORT, from pg_lsclusters.
cluster_on_port() { pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2; exit }'; }

start_postgres() {
  local cluster
  cluster=$(cluster_on_port)
  if [ -z "$cluster" ] && [ "$PG_PORT" = 5432 ]; then
    ls /etc/postgresql/*/main >/dev/null 2>&1 || apt_install postgresql
    cluster=$(cluster_on_port)
  fi
  if [ -z "$cluster" ]; then
    echo "FAIL no PostgreSQL cluster on port $PG_PORT (pg_lsclusters); create one or set PGPORT_KIT" >&2
    exit 1
  fi
  echo "starting PostgreSQL cluster $cluster (port $PG_PORT)"
  # shellcheck disable=SC2086  # "version name" splits into two arguments on purpose
  as_root pg_ctlcluster --skip-systemctl-redirect $cluster start </dev/null || true
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
}

# Makes (or repairs) the kit's own role and database; prints the DATABASE_URL that reaches them.
make_kit_role() {
  local password
  password=$(saved_password)
  [ -n "$password" ] || password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  psql_admin -v role="$KIT_ROLE" -v pw="$password" <<'SQL' >/dev/null
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'pw') \gexec
SQL
  psql_admin -v role="$KIT_ROLE" -v db="$DB_NAME" <<'SQL' >/dev/null
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
  echo "postgresql://$KIT_ROLE:$password@$PG_HOST:$PG_PORT/$DB_NAME"
}
# Admin work on a local cluster as the postgres OS user over its socket (peer authentication);
# its SQL comes from a here-document on stdin, so no terminal is ever read.
psql_admin() {
  local cmd=(psql -w -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$PG_PORT" -d postgres "$@")
  if [ "$(id -u)" -eq 0 ] && have runuser; then
    runuser -u postgres -- "${cmd[@]}"
  else
    sudo -n -u postgres -- "${cmd[@]}"
  fi
}

saved_url() { [ -f "$ENV_FILE" ] && sed -n 's/^DATABASE_URL=//p' "$ENV_FILE" | tail -n 1 || true; }
saved_password() { saved_url | sed -nE 's#^postgres(ql)?://[^:/@]+:([^@]*)@.*#\2#p'; }

save_url() {
  local tmp="$ENV_FILE.tmp.$$"
  (
    umask 077
    {
      echo "# Written by scripts/ensure_services.sh: the kit's PostgreSQL login (git-ignored)."
      echo "DATABASE_URL=$1"
    } >"$tmp"
  )
  mv "$tmp" "$ENV_FILE"
}

# Prints where the password is hidden, never the password itself.
shown() { printf '%s\n' "$1" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#'; }

# Client tools and build headers first: pg_isready/redis-cli to probe, pg_config to build psycopg2.
have pg_isready && have pg_config || apt_install postgresql-client libpq-dev
have redis-cli || apt_install redis-tools

pg_up || start_postgres
if pg_up; then
  echo "OK   PostgreSQL $PG_HOST:$PG_PORT"
else
  echo "FAIL PostgreSQL $PG_HOST:$PG_PORT is not answering; start it or run 'make env-up'" >&2
  exit 1
fi

# A way in that needs no prompt.
if [ -n "${DATABASE_URL:-}" ] && [ "${DATABASE_URL}" != "$(saved_url)" ]; then
  url_works "$DATABASE_URL" || {
    echo "FAIL DATABASE_URL=$(shown "$DATABASE_URL") does not connect without a prompt;" \
      "fix the URL (user, password, host, port) or unset it" >&2
    exit 1
  }
  url=$DATABASE_URL
  how="DATABASE_URL from the environment"
elif url_works "$(saved_url)"; then
  url=$(saved_url)
  how="the kit's role from $ENV_FILE"
elif url_works "postgresql://postgres@$PG_HOST:$PG_PORT/$DB_NAME"; then
  url="postgresql://postgres@$PG_HOST:$PG_PORT/$DB_NAME"
  how="user postgres without a password"
  # Another cluster than the kit's default: the rest of the kit must find it too.
  if [ "$url" != "$KIT_DEFAULT_URL" ]; then
    save_url "$url"
    how="$how, saved in $ENV_FILE"
  fi
elif local_pg && url=$(make_kit_role) && url_works "$url"; then
  save_url "$url"
  how="the kit's own role $KIT_ROLE (password authentication here), saved in $ENV_FILE"
else
  echo "FAIL PostgreSQL $PG_HOST:$PG_PORT refuses the kit: set DATABASE_URL=postgresql://USER:PASSWORD@$PG_HOST:$PG_PORT/$DB_NAME" \
    "for a role that may create databases (or run this script as root or with passwordless sudo" \
    "on the database machine, so it can make its own role)" >&2
  exit 1
fi
echo "OK   PostgreSQL login: $how ($(shown "$url"))"

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

db=$(printf '%s\n' "$url" | sed -nE 's#^postgres(ql)?://[^/]*/([^?]+).*#\2#p')
db=${db:-$DB_NAME}
if ! psql_url -d "$(db_url "$url" postgres)" -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  psql_url -d "$(db_url "$url" postgres)" -c "CREATE DATABASE \"$db\""
  echo "created database $db"
fi
