#!/usr/bin/env bash
# Runs a core and edge sites on loopback (issue 8: inference where the data is, store-and-forward
# of events to the core).
#   ./edge.sh [site...]        (default: site1 site2) installs what is missing; starts the core:
#                              nats-server (clients 127.0.0.1:4322, leaf nodes 127.0.0.1:7422),
#                              PostgreSQL (127.0.0.1:55435) and the host (API, processors,
#                              projections; API at http://127.0.0.1:8090); then per site a
#                              nats-server that is a leaf node of the core (authenticated: user
#                              "leaf", password in .data/edge/core/nats-leaf.secret) with JetStream domain
#                              <site> (clients 127.0.0.1:4331, 4332, ...) and the site's processor
#                              (role edge) watching .data/edge/<site>/input for 16-bit PCM WAV audio
#                              (speech detection) and PNG frames of a text line (text reading), and
#                              the same items over MQTT (127.0.0.1:1883, 1884, ...; topic
#                              cqrsi/<site>/raw/<wav|png|jpg>/<item>, QoS 1).
#                              Each site gets a sample feed of 5 items. Ctrl-C stops it all.
#   ./edge.sh feed <site> [n]  drops n (default 10) more raw items into the site's input: spoken clips
#                              (espeak-ng) and every fourth a frame of text (imagemagick).
#   ./edge.sh cut | link       stops | restarts the core's nats-server (the sites keep producing
#                              into their own domains meanwhile and forward their backlog on link).
#   ./edge.sh --websocket [site...]  the same, but the sites' servers reach the core over WebSocket
#                              with TLS (wss://127.0.0.1:7443, a throwaway CA and server certificate
#                              generated into .data/edge/core/tls; same user "leaf" and password).
#                              With CQRSI_EDGE_PROXY=<host:port> of an HTTP proxy, the sites dial a
#                              local relay (socat, 127.0.0.1:7444) that tunnels through the proxy
#                              with CONNECT (nats-server 2.9.10 cannot use a proxy itself).
# Everything lives under .data/edge (core/, <site>/{nats,input,state}).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

EDGE="$ROOT/.data/edge"
CORE_NATS_PORT=${CQRSI_EDGE_CORE_NATS_PORT:-4322}
CORE_MONITOR_PORT=${CQRSI_EDGE_CORE_MONITOR_PORT:-8322}
LEAF_PORT=${CQRSI_EDGE_LEAF_PORT:-7422}
WS_PORT=${CQRSI_EDGE_WS_PORT:-7443}
RELAY_PORT=${CQRSI_EDGE_RELAY_PORT:-7444}
PROXY=${CQRSI_EDGE_PROXY:-}
PG_PORT=${CQRSI_EDGE_PG_PORT:-55435}
HTTP_URL=${CQRSI_EDGE_URL:-http://127.0.0.1:8090}
SITE_BASE_PORT=${CQRSI_EDGE_SITE_BASE_PORT:-4330}
SITE_MQTT_BASE_PORT=${CQRSI_EDGE_SITE_MQTT_BASE_PORT:-1882}
SITE_MONITOR_BASE_PORT=${CQRSI_EDGE_SITE_MONITOR_BASE_PORT:-8330}
APP="$ROOT/src/Api/bin/Release/net10.0/CqrsInference.Api.dll"

SENTENCES=(
  "Pressure in tank four is rising. Please check the valve."
  "Door seven opened. Nobody badged in."
  "Conveyor two stopped. A pallet is stuck at the scanner."
  "Temperature in the cold room is back to normal."
  "Forklift entering aisle nine. Keep clear."
)

LINES=("Valve 4 pressure 7.2 bar" "Gate 7 open" "Line 2 stopped" "Cold room 3.5 C")

# edge_feed <site> <n>: n raw items, written aside and then renamed into the input folder so the
# processor never reads half a file: spoken clips (espeak-ng, 22 kHz mono WAV) and, every fourth,
# a camera frame of one line of text (imagemagick PNG).
edge_feed() {
  local site="$1" n="$2" dir="$EDGE/$1/input" tmp i name
  mkdir -p "$dir" "$EDGE/$site/tmp"
  for ((i = 0; i < n; i++)); do
    name="$(date -u +%Y%m%dT%H%M%S%N)-$i"
    if [ $((i % 4)) -eq 3 ]; then
      tmp="$EDGE/$site/tmp/$name.png"
      convert -size 520x48 xc:white -font DejaVu-Sans -pointsize 28 -fill black -gravity center \
        -annotate 0 "${LINES[$((RANDOM % ${#LINES[@]}))]}" -trim +repage -bordercolor white -border 6 "$tmp"
    else
      tmp="$EDGE/$site/tmp/$name.wav"
      espeak-ng -w "$tmp" "${SENTENCES[$((RANDOM % ${#SENTENCES[@]}))]}"
    fi
    mv "$tmp" "$dir/"
  done
  cqrsi__log "fed $n raw items to $site ($dir)"
}

# The transport the sites' links use: the leaf-node protocol (tcp) or WebSocket with TLS. The
# core remembers it, so that `./edge.sh link` restarts the core with the same listeners.
TRANSPORT=tcp
if [ "${1:-}" = --websocket ]; then
  TRANSPORT=websocket
  shift
elif [ "${1:-}" = link ] && [ -f "$EDGE/core/transport" ]; then
  TRANSPORT="$(cat "$EDGE/core/transport")"
fi

# Sites' servers authenticate on the core's leaf-node port (user "leaf", a password generated once),
# or with the same user on its WebSocket listener.
core_leaf_conf() {
  cqrsi_nats_leaf_listen_conf "127.0.0.1:$LEAF_PORT" "$(cqrsi_nats_secret "$EDGE/core" nats-leaf)"
  if [ "$TRANSPORT" = websocket ]; then
    cqrsi_tls_server_cert "$EDGE/core/tls" >&2
    cqrsi_nats_websocket_conf "127.0.0.1:$WS_PORT" "$EDGE/core/tls"
  fi
}

# A site's remote block: the leaf-node port, the WebSocket listener, or the relay into the proxy.
site_remote_conf() {
  local password
  password="$(cqrsi_nats_secret "$EDGE/core" nats-leaf)"
  if [ "$TRANSPORT" != websocket ]; then
    cqrsi_nats_leaf_remote_conf "127.0.0.1:$LEAF_PORT" "$password"
  elif [ -n "$PROXY" ]; then
    cqrsi_nats_leaf_remote_conf "127.0.0.1:$RELAY_PORT" "$password" "$EDGE/core/tls/ca.pem"
  else
    cqrsi_nats_leaf_remote_conf "127.0.0.1:$WS_PORT" "$password" "$EDGE/core/tls/ca.pem"
  fi
}

# The relay a site dials when an HTTP proxy stands between it and the core: each connection is
# tunnelled with CONNECT to the core's WebSocket port (TLS runs inside, end to end).
start_relay() {
  command -v socat >/dev/null 2>&1 || cqrsi_install_test_tools
  socat "TCP-LISTEN:$RELAY_PORT,bind=127.0.0.1,fork,reuseaddr" "PROXY:${PROXY%:*}:127.0.0.1:$WS_PORT,proxyport=${PROXY##*:}" &
  pids+=($!)
  echo "==> relay 127.0.0.1:$RELAY_PORT -> CONNECT 127.0.0.1:$WS_PORT through the proxy $PROXY"
}

case "${1:-}" in
  feed)
    command -v espeak-ng >/dev/null 2>&1 && command -v convert >/dev/null 2>&1 || cqrsi_install_test_tools
    edge_feed "${2:?usage: $0 feed <site> [n]}" "${3:-10}"
    exit 0 ;;
  cut)
    cqrsi_stop_nats "$EDGE/core/nats"
    exit 0 ;;
  link)
    CQRSI_NATS_EXTRA_CONF="$(core_leaf_conf)" cqrsi_start_nats "$EDGE/core/nats" "$CORE_NATS_PORT" "$CORE_MONITOR_PORT"
    exit 0 ;;
  -h|--help)
    sed -n '2,23p' "$0"; exit 0 ;;
esac

sites=("$@")
[ "${#sites[@]}" -gt 0 ] || sites=(site1 site2)
for site in "${sites[@]}"; do
  [[ "$site" =~ ^[A-Za-z0-9_-]{1,32}$ ]] || { cqrsi__err "site names are 1-32 letters, digits, - or _: '$site'"; exit 2; }
done

cqrsi_install_packages
cqrsi_install_test_tools
cqrsi_install_models "$ROOT/.models"
cqrsi_install_web_assets "$ROOT/src/Api/wwwroot/lib"

pids=()
cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for site in "${sites[@]}"; do cqrsi_stop_nats "$EDGE/$site/nats"; done
  cqrsi_stop_nats "$EDGE/core/nats"
  cqrsi_stop_postgres "$EDGE/core/pg"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> building"
dotnet build src/Api/Api.csproj -c Release -nologo -v quiet -clp:ErrorsOnly

# The core: its JetStream has no domain (nothing else changes for it) and it accepts leaf nodes.
CQRSI_NATS_EXTRA_CONF="$(core_leaf_conf)" cqrsi_start_nats "$EDGE/core/nats" "$CORE_NATS_PORT" "$CORE_MONITOR_PORT"
echo "$TRANSPORT" >"$EDGE/core/transport"
cqrsi_start_postgres "$EDGE/core/pg" "$PG_PORT"

common_env=(
  "Models__Directory=$ROOT/.models" "Models__Manifest=$ROOT/models/manifest.json"
  "Logging__LogLevel__Default=Warning" "Logging__LogLevel__CqrsInference=Information"
)
core_env=(
  "Cqrsi__Roles=api,processor,projections" "Nats__Url=nats://127.0.0.1:$CORE_NATS_PORT" "Urls=$HTTP_URL" "Topology__Partitions=${CQRSI_PARTITIONS:-2}"
  "ConnectionStrings__Postgres=Host=127.0.0.1;Port=$PG_PORT;Database=cqrsi;Username=postgres;Maximum Pool Size=50"
)
i=0
for site in "${sites[@]}"; do
  core_env+=("Edge__Sites__${i}__Name=$site")
  i=$((i + 1))
done
env "${common_env[@]}" "${core_env[@]}" dotnet "$APP" > >(sed -u 's/^/[core] /') 2>&1 &
pids+=($!)
# After the core host, whose pid the script waits on last (pids[0]).
[ "$TRANSPORT" != websocket ] || [ -z "$PROXY" ] || start_relay

i=1
for site in "${sites[@]}"; do
  port=$((SITE_BASE_PORT + i)) mon=$((SITE_MONITOR_BASE_PORT + i)) mqtt=$((SITE_MQTT_BASE_PORT + i))
  CQRSI_NATS_DOMAIN="$site" \
  CQRSI_NATS_EXTRA_CONF="server_name: \"$site-edge\"
$(cqrsi_nats_site_mqtt_conf "$site" "127.0.0.1:$mqtt")
$(site_remote_conf)" \
    cqrsi_start_nats "$EDGE/$site/nats" "$port" "$mon"
  mkdir -p "$EDGE/$site/input" "$EDGE/$site/state"
  [ -n "$(ls -A "$EDGE/$site/input")" ] || edge_feed "$site" 5
  env "${common_env[@]}" "Cqrsi__Roles=edge" "Nats__Url=nats://127.0.0.1:$port" "Urls=http://127.0.0.1:0" \
    "EdgeSite__Name=$site" "EdgeSite__InputDirectory=$EDGE/$site/input" "EdgeSite__StateDirectory=$EDGE/$site/state" "EdgeSite__Mqtt=true" \
    dotnet "$APP" > >(sed -u "s/^/[$site] /") 2>&1 &
  pids+=($!)
  echo "==> edge site $site: nats-server nats://127.0.0.1:$port (domain $site, leaf of the core over $TRANSPORT, monitor http://127.0.0.1:$mon), raw feed $EDGE/$site/input or MQTT 127.0.0.1:$mqtt (topic cqrsi/$site/raw/<wav|png|jpg>/<item>, QoS 1)"
  i=$((i + 1))
done

cat <<EOT
==> core: nats://127.0.0.1:$CORE_NATS_PORT (leaf nodes 127.0.0.1:$LEAF_PORT$([ "$TRANSPORT" != websocket ] || echo " and wss://127.0.0.1:$WS_PORT"), monitor http://127.0.0.1:$CORE_MONITOR_PORT/leafz), PostgreSQL 127.0.0.1:$PG_PORT, API $HTTP_URL
==> try:  curl -s $HTTP_URL/v1/analytics/edge/sites
          curl -s '$HTTP_URL/v1/analytics/edge?bucket=hour'
          ./edge.sh feed ${sites[0]} 20      (more raw audio for a site)
          ./edge.sh cut; ./edge.sh feed ${sites[0]} 20; ./edge.sh link    (an outage: the site stores and forwards)
==> Ctrl-C stops everything started here
EOT
wait "${pids[0]}"
