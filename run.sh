#!/usr/bin/env bash
# Runs CqrsInference locally on 127.0.0.1.
#   ./run.sh            installs what is missing, starts nats-server and PostgreSQL (data under
#                       .data/), then API + processors + projections in one host, in the foreground:
#                       API at http://127.0.0.1:8080. Ctrl-C stops everything it started.
#   ./run.sh processor  one more processor process against the servers a running ./run.sh started.
#   ./run.sh projections | api   that role alone, likewise.
#   ./run.sh verify      recompute the audit hash chains of the running system's event store.
#   ./run.sh replay      rebuild the job-status projection into fresh tables and compare with the live one.
set -euo pipefail
started=$SECONDS
cd "$(dirname "$0")"
ROOT=$PWD
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

role=${1:-all}
case "$role" in
  all) roles="api,processor,projections" ;;
  api|processor|projections) roles="$role" ;;
  verify|replay) roles="" ;;
  *) echo "usage: $0 [processor|projections|api|verify|replay]" >&2; exit 2 ;;
esac

NATS_PORT=${CQRSI_NATS_PORT:-4222}
NATS_MONITOR_PORT=${CQRSI_NATS_MONITOR_PORT:-8222}
PG_PORT=${CQRSI_PG_PORT:-55432}
HTTP_URL=${CQRSI_URL:-http://127.0.0.1:8080}
if [ "$role" = all ] || [ "$role" = api ]; then
  # Another program on the API's port (another checkout's run.sh, say) would take this run's
  # requests, the operator's key with them: refuse before starting anything rather than after.
  http_port=${HTTP_URL##*:}; http_port=${http_port%%/*}
  if [ -n "$http_port" ] && (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null; then
    echo "error: 127.0.0.1:$http_port is in use by another program; stop it, or give this run another address: CQRSI_URL=http://127.0.0.1:8081 $0 $*" >&2
    exit 1
  fi
fi

cqrsi_install_packages
if [ "$role" = all ]; then
  cqrsi_install_test_tools   # ImageMagick and fonts: the first example (below) renders a line of text
fi
cqrsi_install_models "$ROOT/.models"
cqrsi_install_web_assets "$ROOT/src/Api/wwwroot/lib"

started_nats=0 started_pg=0 first_pid=""
cleanup() {
  trap - EXIT INT TERM
  [ -n "$first_pid" ] && kill "$first_pid" 2>/dev/null || true
  if [ -n "${app_pid:-}" ] && kill -0 "$app_pid" 2>/dev/null; then
    kill -TERM "$app_pid" 2>/dev/null || true
    wait "$app_pid" 2>/dev/null || true
  fi
  [ "$started_nats" = 1 ] && cqrsi_stop_nats "$ROOT/.data/nats"
  [ "$started_pg" = 1 ] && cqrsi_stop_postgres "$ROOT/.data/pg"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# NATS users per role (least privilege), generated once under .data/nats.
cqrsi_nats_users "$ROOT/.data/nats" "$ROOT/config/nats-users.conf.template"

if [ "$role" = all ]; then
  curl -sf "http://127.0.0.1:$NATS_MONITOR_PORT/healthz" >/dev/null 2>&1 || started_nats=1
  cqrsi_start_nats "$ROOT/.data/nats" "$NATS_PORT" "$NATS_MONITOR_PORT"
  [ -f "$ROOT/.data/pg/postmaster.pid" ] || started_pg=1
  cqrsi_start_postgres "$ROOT/.data/pg" "$PG_PORT"
fi

echo "==> building"
dotnet build src/Api/Api.csproj -c Release -nologo -v quiet -clp:ErrorsOnly

export Nats__Url="nats://127.0.0.1:$NATS_PORT"
# The event log's partitions: the same number as in the nats-server's mapping (scripts/lib.sh).
export Topology__Partitions="${CQRSI_PARTITIONS:-2}"
export ConnectionStrings__Postgres="Host=127.0.0.1;Port=$PG_PORT;Database=cqrsi;Username=postgres;Maximum Pool Size=50"
export Models__Directory="$ROOT/.models" Models__Manifest="$ROOT/models/manifest.json"
# Webhook signing master key, generated once per checkout (never committed).
mkdir -p "$ROOT/.data"
[ -s "$ROOT/.data/webhook.key" ] || head -c 32 /dev/urandom | base64 > "$ROOT/.data/webhook.key"
export Webhooks__SigningKey="${Webhooks__SigningKey:-$(cat "$ROOT/.data/webhook.key")}"
export Cqrsi__Roles="$roles"
case "$role" in
  all) export Nats__User=host Nats__Password="$CQRSI_NATS_HOST_PASSWORD" ;;
  api) export Nats__User=api Nats__Password="$CQRSI_NATS_API_PASSWORD" ;;
  processor) export Nats__User=processor Nats__Password="$CQRSI_NATS_PROCESSOR_PASSWORD" ;;
  projections) export Nats__User=projections Nats__Password="$CQRSI_NATS_PROJECTIONS_PASSWORD" ;;
esac
if [ -z "$roles" ]; then
  exec dotnet src/Api/bin/Release/net10.0/CqrsInference.Api.dll "$role"
fi
if [ "$role" = all ] || [ "$role" = api ]; then
  export Urls="$HTTP_URL"
  echo "==> CqrsInference: API at $HTTP_URL (models: GET $HTTP_URL/v1/models); Ctrl-C stops it"
  if [ -z "${CQRSI_API_KEY:-}" ]; then
    echo "    no CQRSI_API_KEY: callers without a key may submit and read (tenant default); analytics, audit and keys need"
    echo "    the operator's key: start with CQRSI_API_KEY=<secret> (and Api__AllowAnonymous=false for keys only), docs/API.md: Keys"
  fi
else
  # Each role's /metrics on a port of its own range (several processors on one machine: 9101, 9102, …).
  metrics_port=$(cqrsi_metrics_port "$role")
  export Urls="http://127.0.0.1:$metrics_port"
  echo "==> CqrsInference $role against nats://127.0.0.1:$NATS_PORT; Ctrl-C stops it"
  echo "    metrics: http://127.0.0.1:$metrics_port/metrics (operator key: Authorization: Bearer \$CQRSI_API_KEY)"
fi

# The README's first example, run once the API answers: a line of text rendered, read by PP-OCRv4,
# and how long it took from ./run.sh to that first result. Only while this run's own API process
# lives: one that failed to start sends nothing (and no key) to whatever answers on the port.
first_result() {
  local line="$ROOT/.data/hello.png" text
  for _ in $(seq 1 1200); do
    kill -0 "$app_pid" 2>/dev/null || return 0
    curl -fs "$HTTP_URL/health" >/dev/null 2>&1 && break
    sleep 0.5
  done
  kill -0 "$app_pid" 2>/dev/null || return 0
  convert -size 400x48 xc:white -font DejaVu-Sans -pointsize 28 -fill black -gravity center \
    -annotate 0 'Hello World 2026' -trim +repage -bordercolor white -border 6 "$line" 2>/dev/null || return 0
  text=$(curl -s -X POST "$HTTP_URL/v1/jobs?wait=30s" -H 'Content-Type: application/json' \
    ${CQRSI_API_KEY:+-H "Authorization: Bearer $CQRSI_API_KEY"} \
    -d "{\"model\":\"ppocr-rec\",\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"$(base64 -w0 "$line")\"]}]}" \
    | grep -o '"name":"text","datatype":"BYTES","shape":\[1\],"data":\["[^"]*"' | sed 's/.*\["//; s/"$//')
  echo "==> ready: first result \"${text:-?}\" (PP-OCRv4, POST /v1/jobs?wait=30s) $((SECONDS - started)) s after ./run.sh started"
}

dotnet src/Api/bin/Release/net10.0/CqrsInference.Api.dll &
app_pid=$!
if [ "$role" = all ]; then
  first_result &
  first_pid=$!
fi
wait "$app_pid"
