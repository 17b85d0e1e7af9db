#!/usr/bin/env bash
# The Redis and PostgreSQL the test suite needs. When nothing answers at PGW_TEST_REDIS_URL
# (default redis://127.0.0.1:6379) or PGW_TEST_POSTGRES_ADMIN_URL (default
# postgres://postgres@127.0.0.1:5432/test), a throw-away server is started from the installed
# binaries — its own free port on 127.0.0.1, its own directory under one temp dir, no
# persistence — and the variable is exported pointing at it; stop_test_services stops them
# and removes the directory. When a binary is missing it says in one line what to install
# and fails, before anything else runs.
#
# scripts/test.sh sources this file. Run directly, `bash scripts/test-services.sh <command…>`
# starts what is missing, runs the command with the variables exported, and stops them again.
# PGW_TEST_DATABASES without "postgres" (e.g. "sqlite") needs no PostgreSQL.

: "${PGW_TEST_REDIS_URL:=redis://127.0.0.1:6379}"
: "${PGW_TEST_POSTGRES_ADMIN_URL:=postgres://postgres@127.0.0.1:5432/test}"
export PGW_TEST_REDIS_URL PGW_TEST_POSTGRES_ADMIN_URL
test_services_dir=""
test_services_redis_pid=""
test_services_pg_data=""
test_services_pg_bin=""

# host and port of a redis:// or postgres:// URL (credentials and path ignored), or nothing.
_ts_host_port() {
  [[ $1 =~ ^[a-z]+://([^@/]*@)?(\[[^]]*\]|[^:/?]+)(:([0-9]+))? ]] || return 1
  local host=${BASH_REMATCH[2]} port=${BASH_REMATCH[4]}
  host=${host#[}; host=${host%]}
  printf '%s %s\n' "$host" "${port:-${2:-}}"
}

# True when something accepts a TCP connection there (bash's /dev/tcp: no client needed).
_ts_answers() {
  local hp host port
  hp=$(_ts_host_port "$1" "${2:-}") || return 1
  read -r host port <<<"$hp"
  timeout 3 bash -c "exec 3<>'/dev/tcp/$host/$port'" 2>/dev/null
}

_ts_free_port() {
  node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# The newest installed PostgreSQL with initdb and pg_ctl (Debian keeps them out of PATH).
_ts_pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] && { echo "$d"; return 0; }
  done
  d=$(command -v initdb 2>/dev/null) && [[ -x $(dirname "$d")/pg_ctl ]] && { dirname "$d"; return 0; }
  return 1
}

# initdb and the server refuse to run as root: as root they run as the postgres user.
_ts_as_pg() {
  if [[ $(id -u) != 0 ]]; then "$@"; return; fi
  if command -v runuser >/dev/null; then runuser -u postgres -- "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
}

_ts_need_postgres() {
  [[ " ${PGW_TEST_DATABASES:-sqlite postgres} " == *" postgres "* ]]
}

start_test_services() {
  local need_redis=0 need_pg=0
  _ts_answers "$PGW_TEST_REDIS_URL" 6379 || need_redis=1
  _ts_need_postgres && ! _ts_answers "$PGW_TEST_POSTGRES_ADMIN_URL" 5432 && need_pg=1
  # Everything missing is named before anything starts.
  local missing=()
  ((need_redis)) && ! command -v redis-server >/dev/null && missing+=("nothing answers at $PGW_TEST_REDIS_URL and redis-server is not installed: apt-get install redis-server (or set PGW_TEST_REDIS_URL)")
  if ((need_pg)); then
    if ! test_services_pg_bin=$(_ts_pg_bin); then
      missing+=("nothing answers at $PGW_TEST_POSTGRES_ADMIN_URL and PostgreSQL is not installed: apt-get install postgresql (or set PGW_TEST_POSTGRES_ADMIN_URL, or PGW_TEST_DATABASES=sqlite)")
    elif [[ $(id -u) == 0 ]] && ! id postgres >/dev/null 2>&1; then
      missing+=("nothing answers at $PGW_TEST_POSTGRES_ADMIN_URL, and as root PostgreSQL needs a postgres user to run as: run as another user, or set PGW_TEST_POSTGRES_ADMIN_URL")
    fi
  fi
  if ((${#missing[@]})); then
    printf 'npm test: %s\n' "${missing[@]}" >&2
    return 1
  fi
  ((need_redis || need_pg)) || return 0
  test_services_dir=$(mktemp -d "${TMPDIR:-/tmp}/pgw-test-services.XXXXXX") || return 1
  chmod 711 "$test_services_dir" # the postgres user reaches its own sub-directory
  if ((need_redis)); then
    local port
    port=$(_ts_free_port) || return 1
    mkdir "$test_services_dir/redis"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$test_services_dir/redis" \
      --daemonize yes --pidfile "$test_services_dir/redis/redis.pid" --logfile "$test_services_dir/redis/redis.log" || return 1
    export PGW_TEST_REDIS_URL="redis://127.0.0.1:$port"
    for _ in $(seq 1 100); do _ts_answers "$PGW_TEST_REDIS_URL" && break; sleep 0.1; done
    test_services_redis_pid=$(cat "$test_services_dir/redis/redis.pid" 2>/dev/null)
    _ts_answers "$PGW_TEST_REDIS_URL" || { echo "npm test: the throw-away redis-server did not start (see $test_services_dir/redis/redis.log)" >&2; return 1; }
    echo "[test services] redis-server on 127.0.0.1:$port (throw-away)" >&2
  fi
  if ((need_pg)); then
    local port pg="$test_services_dir/postgres"
    port=$(_ts_free_port) || return 1
    mkdir "$pg" && { [[ $(id -u) != 0 ]] || chown postgres "$pg"; }
    _ts_as_pg "$test_services_pg_bin/initdb" -D "$pg/data" -U postgres -A trust -E UTF8 --no-sync >"$pg/initdb.log" 2>&1 \
      || { echo "npm test: initdb failed (see $pg/initdb.log)" >&2; return 1; }
    test_services_pg_data="$pg/data"
    # fsync off: a throw-away server whose data nobody keeps.
    _ts_as_pg "$test_services_pg_bin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -t 60 \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $pg -c fsync=off -c full_page_writes=off -c synchronous_commit=off" start >/dev/null \
      || { echo "npm test: the throw-away PostgreSQL did not start (see $pg/server.log)" >&2; return 1; }
    _ts_as_pg "$test_services_pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres test \
      || { echo "npm test: could not create the database test on the throw-away PostgreSQL" >&2; return 1; }
    export PGW_TEST_POSTGRES_ADMIN_URL="postgres://postgres@127.0.0.1:$port/test"
    echo "[test services] PostgreSQL on 127.0.0.1:$port (throw-away)" >&2
  fi
}

stop_test_services() {
  if [[ -n $test_services_pg_data ]]; then
    _ts_as_pg "$test_services_pg_bin/pg_ctl" -D "$test_services_pg_data" -m immediate -w stop >/dev/null 2>&1
    test_services_pg_data=""
  fi
  if [[ -n $test_services_redis_pid ]]; then
    kill "$test_services_redis_pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$test_services_redis_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$test_services_redis_pid" 2>/dev/null
    test_services_redis_pid=""
  fi
  if [[ -n $test_services_dir ]]; then
    rm -rf "$test_services_dir"
    test_services_dir=""
  fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  trap stop_test_services EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  start_test_services || exit 1
  "$@"
  exit $?
fi
