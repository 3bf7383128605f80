# Helpers shared by the project's shell tools (tools/stack, tools/test): messages, Debian
# packages, Maven Central downloads, and the pid-file/port/readiness plumbing of local services.
# Sourced, not executed; callers run with `set -euo pipefail`.
# shellcheck shell=bash

KF_PROG=${KF_PROG:-kfleet}
KF_HOST=127.0.0.1
KF_HOME=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
KF_CACHE=${KFLEET_CACHE:-$KF_HOME/.cache/kfleet}
KF_STATE=${KFLEET_STATE:-$KF_HOME/.local/state/kfleet}
KF_MAVEN_DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
KF_MAVEN_INSTALL_PLUGIN=org.apache.maven.plugins:maven-install-plugin:3.1.2

# What building and testing kfleet needs from Debian (tools/test, tools/run).
KF_BUILD_PACKAGES=(
    build-essential clang clang-format cmake ninja-build pkg-config git libclang-rt-14-dev
    librdkafka-dev libavro-dev libpq-dev libcurl4-openssl-dev libjansson-dev libyaml-dev
    libmicrohttpd-dev libpcre2-dev libcmocka-dev libssl-dev libmariadb-dev valgrind prometheus
)

# Messages go to stderr, so commands whose stdout is data (`tools/stack env`) stay eval-able.
kf_say() {
    printf '%s: %s\n' "$KF_PROG" "$*" >&2
}

kf_warn() {
    printf '%s: warning: %s\n' "$KF_PROG" "$*" >&2
}

kf_die() {
    printf '%s: error: %s\n' "$KF_PROG" "$*" >&2
    exit 1
}

# Seconds since the epoch with milliseconds, for timing.
kf_now() {
    date +%s.%N | cut -c1-14
}

# kf_elapsed START: seconds since START (from kf_now), one decimal.
kf_elapsed() {
    awk -v s="$1" -v e="$(kf_now)" 'BEGIN { printf "%.1f", e - s }'
}

# Prints the packages among the arguments that are not installed.
kf_missing_packages() {
    local p
    for p in "$@"; do
        if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
            printf '%s\n' "$p"
        fi
    done
}

# kf_apt_install PKG...: installs the packages that are missing. `apt-get update` runs only when
# something is missing, and at most once per process.
kf_apt_install() {
    command -v dpkg-query >/dev/null || kf_die "cannot install packages: this is not a Debian system (no dpkg-query)"
    local missing
    mapfile -t missing < <(kf_missing_packages "$@")
    ((${#missing[@]} > 0)) || return 0
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null ||
            kf_die "missing Debian packages: ${missing[*]} (run as root or install them first)"
        sudo=(sudo -n)
    fi
    kf_say "installing Debian packages: ${missing[*]}"
    if [[ -z ${KF_APT_UPDATED:-} ]]; then
        "${sudo[@]}" apt-get update -q >&2 || kf_die "could not update the Debian package lists"
        KF_APT_UPDATED=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" </dev/null >&2 ||
        kf_die "could not install Debian packages: ${missing[*]}"
}

# kf_maven_fetch GROUP ARTIFACT VERSION CLASSIFIER EXT DEST [PARENT_ARTIFACT]: resolves one
# artifact from Maven Central with Maven (checksums enforced, local repository in the cache) and
# copies it to DEST. Some release POMs name a parent POM that was never published; with
# PARENT_ARTIFACT (same group and version) a minimal stand-in parent is installed into the
# cache's local repository first, so Maven can read the artifact's descriptor. The artifact
# itself is still downloaded and checksum-verified by Maven.
kf_maven_fetch() {
    local group=$1 artifact=$2 version=$3 classifier=$4 ext=$5 dest=$6 parent=${7:-}
    local repo=$KF_CACHE/m2 work log
    work=$(mktemp -d)
    log=$work/maven.log
    mkdir -p "$(dirname "$dest")"
    if [[ -n $parent && ! -f $repo/${group//.//}/$parent/$version/$parent-$version.pom ]]; then
        printf '%s\n' '<project xmlns="http://maven.apache.org/POM/4.0.0">' \
            '  <modelVersion>4.0.0</modelVersion>' \
            "  <groupId>$group</groupId>" \
            "  <artifactId>$parent</artifactId>" \
            "  <version>$version</version>" \
            '  <packaging>pom</packaging>' \
            '</project>' >"$work/parent.pom"
        if ! mvn -B -ntp -Dmaven.repo.local="$repo" "$KF_MAVEN_INSTALL_PLUGIN:install-file" \
            -Dfile="$work/parent.pom" -DpomFile="$work/parent.pom" </dev/null >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            rm -rf "$work"
            kf_die "could not install the stand-in parent POM $group:$parent:$version"
        fi
    fi
    if ! (cd "$work" && mvn -B -ntp -C -Dmaven.repo.local="$repo" \
        "$KF_MAVEN_DEPENDENCY_PLUGIN:copy" \
        -Dartifact="$group:$artifact:$version:$ext${classifier:+:$classifier}" \
        -DoutputDirectory="$work/out" </dev/null >"$log" 2>&1); then
        tail -n 30 "$log" >&2
        rm -rf "$work"
        kf_die "could not fetch $group:$artifact:$version${classifier:+:$classifier} ($ext) with Maven"
    fi
    mv -f "$work/out/$artifact-$version${classifier:+-$classifier}.$ext" "$dest"
    rm -rf "$work"
}

# kf_maven_copy_dependencies POM OUTDIR LOG: resolves the runtime dependencies declared in POM
# with Maven (local repository in the cache) and copies the jars into OUTDIR.
kf_maven_copy_dependencies() {
    local pom=$1 outdir=$2 log=$3
    if ! mvn -B -ntp -Dmaven.repo.local="$KF_CACHE/m2" -f "$pom" \
        "$KF_MAVEN_DEPENDENCY_PLUGIN:copy-dependencies" -DincludeScope=runtime \
        -DoutputDirectory="$outdir" </dev/null >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        kf_die "could not resolve the dependencies of $pom with Maven (log: $log)"
    fi
}

# kf_java: the java launcher ($JAVA_HOME wins over PATH).
kf_java() {
    if [[ -n ${JAVA_HOME:-} ]]; then
        printf '%s/bin/java' "$JAVA_HOME"
    else
        command -v java || kf_die "java is not installed"
    fi
}

kf_pid_file() {
    printf '%s/run/%s.pid' "$KF_STATE" "$1"
}

kf_log_file() {
    printf '%s/log/%s.log' "$KF_STATE" "$1"
}

# kf_pid_matches PID MARKER: PID is alive and its command line contains MARKER (a path unique to
# this stack), so a recycled pid of an unrelated process is not taken for the service.
kf_pid_matches() {
    local pid=$1 marker=$2 cmdline
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmdline == *"$marker"* ]]
}

# kf_svc_pid SVC MARKER: prints the pid of the running service and returns 0; returns 1 when
# there is no pid file and 2 when the pid file is stale (the file is left for the caller).
kf_svc_pid() {
    local file pid
    file=$(kf_pid_file "$1")
    [[ -s $file ]] || return 1
    pid=$(<"$file")
    if kf_pid_matches "$pid" "$2"; then
        printf '%s' "$pid"
        return 0
    fi
    return 2
}

# kf_port_in_use PORT: something accepts connections on 127.0.0.1:PORT.
kf_port_in_use() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$KF_HOST/$1" 2>/dev/null
}

# kf_port_owner PORT: "name, pid N" of the listener when ss can tell, else nothing.
kf_port_owner() {
    command -v ss >/dev/null || return 0
    ss -Hltnp "sport = :$1" 2>/dev/null |
        sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1, pid \2/p' | head -n 1
}

# kf_require_free_port SVC PORT: fails naming the port when another process listens on it.
kf_require_free_port() {
    local svc=$1 port=$2 owner
    if kf_port_in_use "$port"; then
        owner=$(kf_port_owner "$port")
        kf_die "$svc: port $port on $KF_HOST is already in use by another process${owner:+ ($owner)}; stop it or free the port"
    fi
}

# kf_fail_with_log SVC MESSAGE: reports MESSAGE with the tail of the service log, then exits.
kf_fail_with_log() {
    local svc=$1 msg=$2 log
    log=$(kf_log_file "$svc")
    printf '%s: error: %s\n' "$KF_PROG" "$msg" >&2
    if [[ -s $log ]]; then
        printf '%s: last lines of %s:\n' "$KF_PROG" "$log" >&2
        tail -n 40 "$log" | sed 's/^/    /' >&2
    fi
    exit 1
}

# kf_spawn SVC CMD...: starts CMD detached (own session, stdin from /dev/null, output appended
# to the service log) and records its pid. setsid execs in place, so the pid is the server's.
# The server must not inherit the stack lock (fd 9), or it would hold it for its lifetime.
kf_spawn() {
    local svc=$1 log pidfile pid
    shift
    log=$(kf_log_file "$svc")
    pidfile=$(kf_pid_file "$svc")
    mkdir -p "$(dirname "$log")" "$(dirname "$pidfile")"
    printf '\n=== %s: starting %s\n' "$(date -Is)" "$svc" >>"$log"
    (cd / && exec setsid "$@" </dev/null >>"$log" 2>&1 9>&-) &
    pid=$!
    printf '%s\n' "$pid" >"$pidfile"
    kf_say "$svc: started (pid $pid, log $log)"
}

# kf_wait_until SVC MARKER TIMEOUT PROBE...: polls PROBE until it succeeds; fails with the log
# tail when the process dies or TIMEOUT seconds pass (then it is stopped, so that a later `up`
# starts it afresh instead of finding a half-started server).
kf_wait_until() {
    local svc=$1 marker=$2 timeout=$3 start pid
    shift 3
    start=$SECONDS
    while ! "$@" >/dev/null 2>&1; do
        if ! pid=$(kf_svc_pid "$svc" "$marker"); then
            kf_fail_with_log "$svc" "$svc exited during start-up"
        fi
        if ((SECONDS - start >= timeout)); then
            kf_stop "$svc" "$marker" TERM 10 2>/dev/null
            kf_fail_with_log "$svc" "$svc (pid $pid) did not answer within ${timeout}s; stopped it"
        fi
        sleep 0.5
    done
}

# kf_stop SVC MARKER SIGNAL TIMEOUT: sends SIGNAL, waits up to TIMEOUT seconds for the process to
# exit, then kills it. Removes the pid file.
kf_stop() {
    local svc=$1 marker=$2 signal=$3 timeout=$4 pid rc=0 start
    pid=$(kf_svc_pid "$svc" "$marker") || rc=$?
    case $rc in
    1)
        kf_say "$svc: not running"
        return 0
        ;;
    2)
        kf_say "$svc: not running (removed stale pid file)"
        rm -f "$(kf_pid_file "$svc")"
        return 0
        ;;
    esac
    kill "-$signal" "$pid" 2>/dev/null || true
    start=$SECONDS
    while kf_pid_matches "$pid" "$marker"; do
        if ((SECONDS - start >= timeout)); then
            kf_warn "$svc (pid $pid) did not stop within ${timeout}s after SIG$signal; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$(kf_pid_file "$svc")"
    kf_say "$svc: stopped (pid $pid, $((SECONDS - start))s)"
}
