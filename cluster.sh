#!/usr/bin/env bash
# Real multi-server NATS on 127.0.0.1, with PostgreSQL and the application (data under .data/<mode>).
#   ./cluster.sh           three nats-servers as one JetStream cluster (client ports 4231-4233),
#                          streams and buckets with three replicas (R3), and API + processors +
#                          projections in one host at http://127.0.0.1:8080 connected to all three.
#                          Kill any one server (see the pids printed): the system carries on.
#   ./cluster.sh regions   three regions, east, west and witness, as three one-server clusters
#                          joined by gateways (a super-cluster; client ports 4241, 4242, 4243):
#                          API + processor + projections in east at http://127.0.0.1:8080 (the
#                          home: the streams live there) and in west at http://127.0.0.1:8081
#                          (CQRSI_WEST_URL); the witness runs no application and only keeps
#                          JetStream's metadata majority when a region is lost. East's backlogs
#                          overflow to west's idle processor. The APIs keep standby mirrors of the
#                          streams in west (Failover:StandbyRegions=east,west), so west can take
#                          over when east is lost: kill -9 east's nats-server, then
#                          `cqrsi --url http://127.0.0.1:8081 failover east`; east returns with
#                          its JetStream store removed (docs/DEPLOY.md).
# Ctrl-C stops everything it started. Every link authenticates: clients as the NATS users of
# config/nats-users.conf.template (the application as "host"), routes as "route", gateways as
# "gateway", with passwords generated once under .data/<mode>/ (*.secret, users.env).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

mode=${1:-cluster}
case "$mode" in
  cluster|regions) ;;
  *) echo "usage: $0 [cluster|regions]" >&2; exit 2 ;;
esac
DATA="$ROOT/.data/$mode"
HTTP_URL=${CQRSI_URL:-http://127.0.0.1:8080}
WEST_URL=${CQRSI_WEST_URL:-http://127.0.0.1:8081}
PG_PORT=${CQRSI_PG_PORT:-55436}

cqrsi_install_packages
cqrsi_install_models "$ROOT/.models"
cqrsi_install_web_assets "$ROOT/src/Api/wwwroot/lib"

nodes=() app_pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${app_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${app_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for node in "${nodes[@]}"; do cqrsi_stop_nats "$DATA/$node" >/dev/null 2>&1 || true; done
  cqrsi_stop_postgres "$DATA/pg" >/dev/null 2>&1 || true
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Client users (one users.conf for every server) and the links' passwords, generated once.
cqrsi_nats_users "$DATA" "$ROOT/config/nats-users.conf.template"
route_password=$(cqrsi_nats_secret "$DATA" nats-route)
gateway_password=$(cqrsi_nats_secret "$DATA" nats-gateway)

# start_node <name> <client port> <monitor port> <extra config>
start_node() {
  nodes+=("$1")
  mkdir -p "$DATA/$1"
  install -m 600 "$DATA/users.conf" "$DATA/$1/users.conf"
  CQRSI_NATS_EXTRA_CONF="$4" cqrsi_start_nats "$DATA/$1" "$2" "$3"
}

if [ "$mode" = cluster ]; then
  for i in 1 2 3; do
    start_node "n$i" "423$i" "823$i" "server_name: \"n$i\"
$(cqrsi_nats_cluster_conf cqrsi "127.0.0.1:623$i" "$route_password" 127.0.0.1:6231 127.0.0.1:6232 127.0.0.1:6233)"
  done
  urls="nats://127.0.0.1:4231,nats://127.0.0.1:4232,nats://127.0.0.1:4233"
else
  # A one-server cluster routes to itself: JetStream's clustered mode needs a route to start.
  # JetStream's metadata spans the super-cluster and needs a majority of its servers: with two
  # regions, losing one stops JetStream in the other, so a third (the witness) keeps the majority.
  regions=(east west witness)
  for i in 1 2 3; do
    name=${regions[i - 1]} gateways=()
    for j in 1 2 3; do [ "$j" = "$i" ] || gateways+=("${regions[j - 1]}=127.0.0.1:724$j"); done
    start_node "$name" "424$i" "824$i" "server_name: \"$name-1\"
$(cqrsi_nats_cluster_conf "$name" "127.0.0.1:624$i" "$route_password" "127.0.0.1:624$i")
$(cqrsi_nats_gateway_conf "$name" "127.0.0.1:724$i" "$gateway_password" "${gateways[@]}")"
  done
fi
cqrsi_start_postgres "$DATA/pg" "$PG_PORT"

echo "==> building"
dotnet build src/Api/Api.csproj -c Release -nologo -v quiet -clp:ErrorsOnly
export ConnectionStrings__Postgres="Host=127.0.0.1;Port=$PG_PORT;Database=cqrsi;Username=postgres;Maximum Pool Size=50"
export Topology__Partitions="${CQRSI_PARTITIONS:-2}"
export Models__Directory="$ROOT/.models" Models__Manifest="$ROOT/models/manifest.json"
mkdir -p "$DATA"
[ -s "$DATA/webhook.key" ] || head -c 32 /dev/urandom | base64 > "$DATA/webhook.key"
export Webhooks__SigningKey="${Webhooks__SigningKey:-$(cat "$DATA/webhook.key")}"
APP="$ROOT/src/Api/bin/Release/net10.0/CqrsInference.Api.dll"
export Nats__User=host Nats__Password="$CQRSI_NATS_HOST_PASSWORD"

if [ "$mode" = cluster ]; then
  Nats__Url="$urls" Topology__Replicas=3 Cqrsi__Roles=api,processor,projections Urls="$HTTP_URL" dotnet "$APP" &
  app_pids+=($!)
  echo "==> CqrsInference on a three-node cluster ($urls, R3): API at $HTTP_URL; nats-server pids:" \
    "$(for n in "${nodes[@]}"; do printf '%s=%s ' "$n" "$(cat "$DATA/$n/nats.pid")"; done)"
else
  export Failover__StandbyRegions__0=east Failover__StandbyRegions__1=west
  Nats__Url="nats://127.0.0.1:4241" Submit__Region=east Submit__Regions__0=east Submit__Regions__1=west \
    Processor__Region=east Processor__WorkerId=east-1 \
    Cqrsi__Roles=api,processor,projections Urls="$HTTP_URL" dotnet "$APP" &
  app_pids+=($!)
  # West's API starts once east's answers: the first API to create the streams makes its region
  # the home (east here); west's then keeps the standby mirrors and can take over.
  for _ in $(seq 1 600); do curl -fs "$HTTP_URL/health" >/dev/null 2>&1 && break; sleep 0.5; done
  Nats__Url="nats://127.0.0.1:4242" Submit__Region=west Submit__Regions__0=east Submit__Regions__1=west \
    Processor__Region=west Processor__WorkerId=west-1 \
    Cqrsi__Roles=api,processor,projections Urls="$WEST_URL" dotnet "$APP" &
  app_pids+=($!)
  echo "==> CqrsInference in two serving regions and a witness: APIs at $HTTP_URL (east, the home) and $WEST_URL (west)," \
    "processors east-1 and west-1, standby mirrors in west; nats-server pids:" "$(for n in "${nodes[@]}"; do printf '%s=%s ' "$n" "$(cat "$DATA/$n/nats.pid")"; done)"
  echo "    submit with \"region\":\"east\" or \"west\"; a backlog over Processor:Scheduling:OverflowThreshold overflows"
  echo "    failover drill: kill -9 east's nats-server, then: cqrsi --url $WEST_URL failover east (the operator's key: start with CQRSI_API_KEY=<secret>)"
  echo "    east's return after a takeover: rm -rf $DATA/east/js (its stale store), then nats-server -c $DATA/east/nats.conf (docs/DEPLOY.md)"
fi
wait -n "${app_pids[@]}"
