# tools/stack service: the schema registry, Apicurio Registry 3 (a Quarkus app) serving the
# Confluent REST API under /apis/ccompat/v7. Its H2 database is a file in the state dir, so
# schema ids survive a restart just as the Kafka records that carry them do.
#
# Apicurio 3.3.x is built for Java 21 (class file version 65) and Debian 12 ships Java 17, so
# the default is 3.0.9, the newest 3.x release on Maven Central that runs on Java 17. Its parent
# POM was never published, so kf_maven_fetch installs a stand-in parent before resolving it.
# shellcheck shell=bash

KF_APICURIO_VERSION=${KFLEET_APICURIO_VERSION:-3.0.9}
KF_REGISTRY_PORT=18081
KF_REGISTRY_HOME=$KF_CACHE/apicurio-registry-$KF_APICURIO_VERSION
KF_REGISTRY_DIR=$KF_STATE/registry
KF_REGISTRY_TIMEOUT=${KFLEET_STACK_TIMEOUT:-120}

registry_packages() {
    printf '%s\n' openjdk-17-jdk-headless curl
}

registry_ports() {
    printf '%s\n' "$KF_REGISTRY_PORT"
}

registry_marker() {
    printf '%s' "$KF_REGISTRY_DIR/data/registry"
}

registry_url() {
    printf 'http://%s:%s/apis/ccompat/v7' "$KF_HOST" "$KF_REGISTRY_PORT"
}

registry_address() {
    registry_url
}

registry_datadir() {
    printf '%s' "$KF_REGISTRY_DIR/data"
}

registry_env() {
    printf 'export KFLEET_REGISTRY_URL=%q\n' "$(registry_url)"
}

registry_install() {
    [[ -f $KF_REGISTRY_HOME/.complete ]] && return 0
    local tmp=$KF_REGISTRY_HOME.partial tarball
    tarball=$KF_CACHE/downloads/apicurio-registry-app-$KF_APICURIO_VERSION-all.tar.gz
    kf_say "registry: downloading Apicurio Registry $KF_APICURIO_VERSION from Maven Central"
    kf_maven_fetch io.apicurio apicurio-registry-app "$KF_APICURIO_VERSION" all tar.gz "$tarball" \
        apicurio-registry
    rm -rf "$tmp"
    mkdir -p "$tmp"
    tar -xzf "$tarball" -C "$tmp" || kf_die "could not unpack $tarball"
    rm -rf "$KF_REGISTRY_HOME"
    mv "$tmp" "$KF_REGISTRY_HOME"
    rm -f "$tarball"
    touch "$KF_REGISTRY_HOME/.complete"
}

# The launcher jar: quarkus-run.jar (fast-jar layout, 3.1+) or *-runner.jar (3.0.x).
registry_jar() {
    local jar
    for jar in "$KF_REGISTRY_HOME/quarkus-run.jar" "$KF_REGISTRY_HOME"/*-runner.jar; do
        if [[ -f $jar ]]; then
            printf '%s' "$jar"
            return 0
        fi
    done
    kf_die "registry: no launcher jar in $KF_REGISTRY_HOME (remove it to download again)"
}

registry_start() {
    local jar
    jar=$(registry_jar)
    mkdir -p "$KF_REGISTRY_DIR/data"
    kf_spawn registry "$(kf_java)" -Xms64m -Xmx384m -XX:+UseSerialGC \
        -Dquarkus.http.host="$KF_HOST" -Dquarkus.http.port="$KF_REGISTRY_PORT" \
        -Dquarkus.http.access-log.enabled=false \
        -Dquarkus.log.console.format='%d{yyyy-MM-dd HH:mm:ss,SSS} %p [%c{3.}] (%t) %m%n' \
        -Dapicurio.datasource.url="jdbc:h2:file:$(registry_marker)" \
        -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 \
        -Dapicurio.datasource.jdbc.max-size=20 \
        -Dapicurio.storage.snapshot.location="$KF_REGISTRY_DIR/data" \
        -jar "$jar"
}

registry_probe() {
    curl -fsS -m 3 -o /dev/null "$(registry_url)/subjects"
}

registry_wait() {
    kf_wait_until registry "$(registry_marker)" "$KF_REGISTRY_TIMEOUT" registry_probe
}

registry_stop() {
    kf_stop registry "$(registry_marker)" TERM 30
}

registry_purge() {
    rm -rf "$KF_REGISTRY_DIR"
}
