# tools/stack service: MariaDB with a row-based binlog (full row images and metadata), the
# MySQL-protocol source for the binlog reader; a database `kfleet` and a user with replication
# grants. The server reads no option files (--no-defaults), so the host's my.cnf cannot interfere.
# shellcheck shell=bash

KF_MYSQL_PORT=13306
KF_MYSQL_USER=kfleet
KF_MYSQL_PASSWORD=kfleet
KF_MYSQL_DB=kfleet
KF_MYSQL_DIR=$KF_STATE/mariadb
KF_MYSQL_TIMEOUT=${KFLEET_STACK_TIMEOUT:-60}

mariadb_packages() {
    printf '%s\n' mariadb-server mariadb-client
}

mariadb_ports() {
    printf '%s\n' "$KF_MYSQL_PORT"
}

mariadb_datadir() {
    printf '%s' "$KF_MYSQL_DIR/data"
}

mariadb_marker() {
    printf '%s' "--datadir=$(mariadb_datadir)"
}

mariadb_socket() {
    printf '%s' "$KF_MYSQL_DIR/mariadb.sock"
}

mariadb_address() {
    printf '%s:%s' "$KF_HOST" "$KF_MYSQL_PORT"
}

mariadb_env() {
    printf 'export KFLEET_MYSQL_DSN=%q\n' \
        "mysql://$KF_MYSQL_USER:$KF_MYSQL_PASSWORD@$(mariadb_address)/$KF_MYSQL_DB"
}

mariadb_install() {
    command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]] ||
        kf_die "mariadb: mariadbd is missing (package mariadb-server)"
}

mariadb_server() {
    if command -v mariadbd >/dev/null; then
        command -v mariadbd
    else
        printf '/usr/sbin/mariadbd'
    fi
}

# The OS account that owns the data dir; install-db lets it log in over the socket as itself.
mariadb_os_user() {
    id -un
}

mariadb_init() {
    [[ -d $(mariadb_datadir)/mysql ]] && return 0
    local log
    log=$(kf_log_file mariadb)
    mkdir -p "$(mariadb_datadir)" "$(dirname "$log")"
    (cd / && mariadb-install-db --no-defaults --datadir="$(mariadb_datadir)" \
        --user="$(mariadb_os_user)" --auth-root-authentication-method=socket \
        --skip-test-db) >>"$log" 2>&1 ||
        kf_fail_with_log mariadb "mariadb: mariadb-install-db failed in $(mariadb_datadir)"
    kf_say "mariadb: initialized $(mariadb_datadir)"
}

mariadb_start() {
    mariadb_init
    local as_root=()
    if ((EUID == 0)); then
        as_root=(--user=root)
    fi
    kf_spawn mariadb "$(mariadb_server)" --no-defaults "$(mariadb_marker)" "${as_root[@]}" \
        --socket="$(mariadb_socket)" --port="$KF_MYSQL_PORT" --bind-address="$KF_HOST" \
        --pid-file="$KF_MYSQL_DIR/mariadbd.pid" --skip-name-resolve \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --server-id=1 --log-bin=mariadb-bin --binlog-format=ROW --binlog-row-image=FULL \
        --binlog-row-metadata=FULL --binlog-expire-logs-seconds=86400
}

# Runs the SQL on stdin as the data dir's owner over the socket (unix_socket authentication).
mariadb_admin_sql() {
    mariadb --no-defaults --socket="$(mariadb_socket)" -u "$(mariadb_os_user)"
}

mariadb_bootstrap() {
    local u=$KF_MYSQL_USER p=$KF_MYSQL_PASSWORD db=$KF_MYSQL_DB host
    {
        printf "CREATE DATABASE IF NOT EXISTS \`%s\` CHARACTER SET utf8mb4;\n" "$db"
        for host in '%' localhost; do
            printf "CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s';\n" "$u" "$host" "$p"
            printf "GRANT ALL PRIVILEGES ON \`%s%%\`.* TO '%s'@'%s';\n" "$db" "$u" "$host"
            printf "GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '%s'@'%s';\n" "$u" "$host"
        done
    } | mariadb_admin_sql
}

mariadb_probe() {
    mariadb-admin --no-defaults --socket="$(mariadb_socket)" -u "$(mariadb_os_user)" \
        --connect-timeout=2 ping
}

mariadb_wait() {
    kf_wait_until mariadb "$(mariadb_marker)" "$KF_MYSQL_TIMEOUT" mariadb_probe
    mariadb_bootstrap >>"$(kf_log_file mariadb)" 2>&1 ||
        kf_fail_with_log mariadb "mariadb: could not create user and database \"$KF_MYSQL_DB\""
    mariadb --no-defaults --protocol=TCP -h "$KF_HOST" -P "$KF_MYSQL_PORT" -u "$KF_MYSQL_USER" \
        -p"$KF_MYSQL_PASSWORD" -e 'SELECT 1' "$KF_MYSQL_DB" >/dev/null 2>&1 ||
        kf_fail_with_log mariadb "mariadb: could not log in as \"$KF_MYSQL_USER\" over TCP"
}

mariadb_stop() {
    kf_stop mariadb "$(mariadb_marker)" TERM 60
}

mariadb_purge() {
    rm -rf "$KF_MYSQL_DIR"
}
