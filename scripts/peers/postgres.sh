# Sourced by scripts/test and scripts/bench: a throwaway PostgreSQL cluster on 127.0.0.1.
# Needs log() and die() from the caller. start_postgres PORT sets PGBIN, PGTMP, RUN_AS and
# exports POSTGRES_URL (the postgres database, trust auth); stop_postgres stops and removes it.

find_pg_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    return 1
}

start_postgres() {
    local port="$1"
    PGBIN="$(find_pg_bin || true)"
    if [ -z "$PGBIN" ]; then
        log "PostgreSQL server not found; installing it with apt-get."
        if [ "$(id -u)" -ne 0 ]; then
            die "PostgreSQL is not installed and this is not root: install it (apt-get install postgresql) and re-run."
        fi
        (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql) >/dev/null \
            || die "apt-get install postgresql failed: install PostgreSQL 13+ by hand and re-run."
        PGBIN="$(find_pg_bin)" || die "PostgreSQL installed but initdb was not found under /usr/lib/postgresql."
    fi
    PGTMP="$(mktemp -d /tmp/costcast-pg.XXXXXX)"
    RUN_AS=()
    if [ "$(id -u)" -eq 0 ]; then
        # initdb refuses to run as root: run the cluster as the postgres user.
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run the cluster as."
        chown postgres: "$PGTMP"
        RUN_AS=(runuser -u postgres --)
    fi
    log "Starting a throwaway PostgreSQL ($PGBIN) on 127.0.0.1:$port."
    (cd /tmp && "${RUN_AS[@]}" "$PGBIN/initdb" -D "$PGTMP/data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$PGTMP/initdb.log" 2>&1) \
        || die "initdb failed; see its log:
$(cat "$PGTMP/initdb.log")"
    if ! (cd /tmp && "${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PGTMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null); then
        die "PostgreSQL did not start on port $port (is the port taken?). Server log:
$(cat "$PGTMP/server.log" 2>/dev/null)"
    fi
    export POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

stop_postgres() {
    [ -n "${PGTMP:-}" ] || return 0
    if [ -f "$PGTMP/data/postmaster.pid" ]; then
        (cd /tmp && "${RUN_AS[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -m fast -w stop >/dev/null 2>&1) || true
    fi
    rm -rf "$PGTMP"
}
