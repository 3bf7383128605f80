# tools/stack service: PostgreSQL 15 with logical decoding on (wal_level=logical), a database
# `kfleet` owned by the role the clients use, and the superuser for tests that need it.
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user.
# shellcheck shell=bash

KF_PG_PORT=15432
KF_PG_BIN=/usr/lib/postgresql/15/bin
KF_PG_USER=kfleet
KF_PG_PASSWORD=kfleet
KF_PG_DB=kfleet
KF_PG_ADMIN_PASSWORD=kfleet-admin
KF_PG_TIMEOUT=${KFLEET_STACK_TIMEOUT:-60}

postgres_packages() {
    printf '%s\n' postgresql-15 postgresql-client-15
}

postgres_ports() {
    printf '%s\n' "$KF_PG_PORT"
}

# The cluster's home: $KF_STATE/postgres, or where that name links to (see postgres_prepare).
postgres_home() {
    if [[ -L $KF_STATE/postgres ]]; then
        readlink -f -- "$KF_STATE/postgres"
    else
        printf '%s' "$KF_STATE/postgres"
    fi
}

postgres_datadir() {
    printf '%s/data' "$(postgres_home)"
}

postgres_marker() {
    postgres_datadir
}

postgres_address() {
    printf '%s:%s' "$KF_HOST" "$KF_PG_PORT"
}

postgres_dsn() {
    printf 'postgresql://%s:%s@%s/%s' "$KF_PG_USER" "$KF_PG_PASSWORD" "$(postgres_address)" "$KF_PG_DB"
}

postgres_env() {
    printf 'export KFLEET_PG_DSN=%q\n' "$(postgres_dsn)"
    printf 'export KFLEET_PG_ADMIN_DSN=%q\n' \
        "postgresql://postgres:$KF_PG_ADMIN_PASSWORD@$(postgres_address)/postgres"
}

postgres_install() {
    [[ -x $KF_PG_BIN/postgres ]] || kf_die "postgres: $KF_PG_BIN/postgres is missing (package postgresql-15)"
}

# Runs a command as the owner of the cluster.
postgres_as_owner() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# As root the server runs as `postgres`, which cannot reach a state dir under /root (mode 0700).
# Then the cluster lives under /var/lib/kfleet, keyed by the state dir, and $KF_STATE/postgres
# links to it so status, purge and people still find it there.
postgres_prepare() {
    mkdir -p "$KF_STATE"
    if ((EUID == 0)) && [[ ! -e $KF_STATE/postgres ]] &&
        ! runuser -u postgres -- test -x "$KF_STATE"; then
        local key alt
        key=$(printf '%s' "$KF_STATE" | cksum | cut -d' ' -f1)
        alt=/var/lib/kfleet/postgres-$key
        mkdir -p /var/lib/kfleet "$alt"
        chmod 755 /var/lib/kfleet
        ln -s "$alt" "$KF_STATE/postgres"
        kf_say "postgres: user postgres cannot reach $KF_STATE; the cluster lives in $alt (linked from $KF_STATE/postgres)"
    fi
    local home
    home=$(postgres_home)
    mkdir -p "$home/data" "$home/run"
    chmod 700 "$home" "$home/data" "$home/run"
    if ((EUID == 0)); then
        chown postgres:postgres "$home" "$home/data" "$home/run"
    fi
}

postgres_init() {
    [[ -f $(postgres_datadir)/PG_VERSION ]] && return 0
    local log
    log=$(kf_log_file postgres)
    mkdir -p "$(dirname "$log")"
    (cd / && postgres_as_owner "$KF_PG_BIN/initdb" -D "$(postgres_datadir)" -U postgres \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --no-locale) >>"$log" 2>&1 ||
        kf_fail_with_log postgres "postgres: initdb failed in $(postgres_datadir)"
    kf_say "postgres: initialized $(postgres_datadir)"
}

postgres_start() {
    postgres_prepare
    postgres_init
    local owner=()
    if ((EUID == 0)); then
        owner=(setpriv --reuid=postgres --regid=postgres --init-groups --)
    fi
    kf_spawn postgres "${owner[@]}" "$KF_PG_BIN/postgres" -D "$(postgres_datadir)" \
        -c port="$KF_PG_PORT" -c listen_addresses="$KF_HOST" \
        -c unix_socket_directories="$(postgres_home)/run" \
        -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20 \
        -c logging_collector=off
}

# psql as the superuser over the Unix socket (trusted: only the cluster owner can reach it).
postgres_psql_admin() {
    "$KF_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(postgres_home)/run" -p "$KF_PG_PORT" \
        -U postgres -d postgres "$@"
}

postgres_bootstrap() {
    postgres_psql_admin -v user="$KF_PG_USER" -v password="$KF_PG_PASSWORD" \
        -v db="$KF_PG_DB" -v admin_password="$KF_PG_ADMIN_PASSWORD" <<'EOF'
SELECT format('CREATE ROLE %I LOGIN REPLICATION CREATEDB PASSWORD %L', :'user', :'password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
ALTER ROLE postgres PASSWORD :'admin_password';
EOF
}

postgres_probe() {
    "$KF_PG_BIN/pg_isready" -q -h "$KF_HOST" -p "$KF_PG_PORT"
}

postgres_wait() {
    kf_wait_until postgres "$(postgres_marker)" "$KF_PG_TIMEOUT" postgres_probe
    postgres_bootstrap >>"$(kf_log_file postgres)" 2>&1 ||
        kf_fail_with_log postgres "postgres: could not create role and database \"$KF_PG_DB\""
    "$KF_PG_BIN/psql" -X -q -d "$(postgres_dsn)" -c 'SELECT 1' >/dev/null 2>&1 ||
        kf_fail_with_log postgres "postgres: could not log in as \"$KF_PG_USER\" over TCP"
}

postgres_stop() {
    # SIGINT is PostgreSQL's fast shutdown: roll back sessions, checkpoint, exit.
    kf_stop postgres "$(postgres_marker)" INT 60
}

postgres_purge() {
    local home
    home=$(postgres_home)
    rm -rf "$home"
    rm -f "$KF_STATE/postgres"
}
