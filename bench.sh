#!/usr/bin/env bash
# Benchmarks against real servers on loopback (separate ports and data from run.sh and test.sh).
#   ./bench.sh e2e [jobs] [concurrency]     submit -> succeeded through the whole pipeline (mlp-test)
#   ./bench.sh ocr-batching [jobs]          PP-OCRv4 items/s, dynamic batching vs batch size 1
#   ./bench.sh replay [jobs]                record jobs×3 events, then replay the projection and verify the chains
#   ./bench.sh analytics [events]           bulk-load ≥1M events, time the async roll-ups catch-up and analytics queries
#   ./bench.sh load [jobs] [concurrency]    the inline baseline vs the pipeline, closed and open loop (issue 9)
#   ./bench.sh overflow [inference ms] [baseline jobs/s] [burst s]
#                                           two regions, a 10x burst in one: queue wait with overflow off vs on
#   ./bench.sh edge [items] [outage_s]      an edge site (leaf node, domain bench1): raw vs event bytes, backlog drain after an outage
#   ./bench.sh recorder [events]            the recorders alone on a pre-filled log vs a raw Marten bulk append, same run (issue 14)
#   ./bench.sh soak [seconds] [rate] [mode] open-loop load at a fixed rate, per 5-second window: accepted, recorded, read-model lag, p50/p99;
#                                           mode interactive: each job POST /v1/jobs?wait=10s with "mode":"interactive" (latency to the answer);
#                                           BENCH_TENANT=<t>: call as tenant t with a stored key (as applications do), not the operator's key
#   ./bench.sh soak [seconds] [rate] [mode] unrecorded  the same without the projections role (nothing recorded): the path's own latencies
#                                           (the words after the numbers in any order: soak 30 350 unrecorded interactive)
#   ./bench.sh bulk [jobs] [per request]    single submits vs bulk submits of the same jobs, alternating, same run
#   ./bench.sh history [events]             /health, /metrics, GET /v1/jobs/{id} p50/p99 on an empty store, then after loading
#                                           events (2,000,000 by default) in the same run, and the ratios (issue 16)
#   ./bench.sh outage [s] [rate] [pg_s] [nats_s] steady load through a PostgreSQL stop and a nats-server restart: accepted / completed / lost /
#                                           duplicated jobs, the longest time without an accepted submit, the longest time each
#                                           role could not work (jobs completed, events recorded, webhooks delivered, /metrics), 5xx (issue 16)
#   ./bench.sh batch [jobs]                 N jobs as single submits vs the same N as one batch (POST /v1/batches), accepted and succeeded jobs/s
#   ./bench.sh interactive [jobs] [concurrency] the inline baseline vs synchronous submits (?wait=) with "mode":"interactive" and queued,
#                                           closed and open loop, mlp-test and ppocr-rec; then every job's events counted in PostgreSQL (issue 17)
#   ./bench.sh shadow [jobs] [jobs/s] [rounds] the same open-loop mlp-test load without, then with a shadow version of mlp-test configured,
#                                           alternated for [rounds] (3) in one run: primary end-to-end p50/p99 of each, the ratio of their
#                                           medians, shadow results and drops (issue 21)
#   ./bench.sh failover [jobs/s] [seconds] [inference ms] three one-server regions (east, west, witness) joined by gateways, an API in east and
#                                           in west with standby mirrors; open-loop load of jobs/s per region for the seconds:
#                                           mirror lag p50/p99 (messages, time); then east's server is SIGKILLed and west takes
#                                           over (POST /v1/admin/failover) and the submits stop: takeover time, time to serve the
#                                           mirrored backlog, jobs accepted in east and lost; inference ms (default 0) slows every
#                                           job (simulated) so that a backlog builds (issue 22)
# Each run starts fresh servers under .data/bench and removes them afterwards.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

cqrsi_install_packages
cqrsi_install_test_tools
cqrsi_install_models "$ROOT/.models"
cqrsi_install_web_assets "$ROOT/src/Api/wwwroot/lib"

BENCH="$ROOT/.data/bench"
cleanup() {
  for region in east west witness; do cqrsi_stop_nats "$BENCH/region-$region" >/dev/null 2>&1 || true; done
  cqrsi_stop_nats "$BENCH/edge-nats" >/dev/null 2>&1 || true
  cqrsi_stop_nats "$BENCH/nats" >/dev/null 2>&1 || true
  cqrsi_stop_postgres "$BENCH/pg" >/dev/null 2>&1 || true
  rm -rf "$BENCH"
}
cleanup
trap cleanup EXIT
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# 55434 unless something (another checkout's tests, say) already listens there.
PG_PORT=${CQRSI_BENCH_PG_PORT:-55434}
while port_busy "$PG_PORT"; do PG_PORT=$((PG_PORT + 1)); done
NATS_PORT=${CQRSI_BENCH_NATS_PORT:-14222}
# Likewise for NATS (and the monitor and leaf-node ports derived from it): a server of another
# checkout's benchmark on the same port would answer the readiness probe, and this run would use it
# (the failover mode's region servers too, from NATS_PORT + 21).
while port_busy "$NATS_PORT" || port_busy $((NATS_PORT + 3200)) || port_busy $((NATS_PORT + 4000)) || port_busy $((NATS_PORT + 21)) || port_busy $((NATS_PORT + 4021)); do NATS_PORT=$((NATS_PORT + 1)); done
# The core accepts leaf nodes (edge sites) on NATS_PORT + 3200 (17422 by default).
LEAF_PORT=$((NATS_PORT + 3200))
export BENCH_NATS_PORT="$NATS_PORT" BENCH_NATS_MONITOR_PORT=$((NATS_PORT + 4000))
export BENCH_CORE_NATS_EXTRA="leafnodes { listen: \"127.0.0.1:$LEAF_PORT\" }"
CQRSI_NATS_EXTRA_CONF="$BENCH_CORE_NATS_EXTRA" cqrsi_start_nats "$BENCH/nats" "$NATS_PORT" "$BENCH_NATS_MONITOR_PORT"
if [ "${1:-}" = edge ]; then
  # One edge site: its own nats-server (NATS_PORT + 10), a leaf node of the core with JetStream
  # domain bench1, and a sample feed of spoken clips.
  CQRSI_NATS_DOMAIN=bench1 CQRSI_NATS_EXTRA_CONF="leafnodes { remotes [ { url: \"nats-leaf://127.0.0.1:$LEAF_PORT\" } ], reconnect: 1 }" \
    cqrsi_start_nats "$BENCH/edge-nats" $((NATS_PORT + 10)) $((NATS_PORT + 4010))
  mkdir -p "$BENCH/clips"
  i=0
  for text in "Pressure in tank four is rising. Please check the valve." "Door seven opened. Nobody badged in." \
      "Conveyor two stopped. A pallet is stuck at the scanner." "Temperature in the cold room is back to normal." \
      "Forklift entering aisle nine. Keep clear."; do
    espeak-ng -w "$BENCH/clips/clip$i.wav" "$text"
    i=$((i + 1))
  done
  export BENCH_EDGE_NATS="nats://127.0.0.1:$((NATS_PORT + 10))" BENCH_EDGE_CLIPS="$BENCH/clips"
fi
if [ "${1:-}" = failover ]; then
  # Three regions, each a one-server cluster (it routes to itself: clustered JetStream needs a
  # route), joined by gateways: east and west serve, the witness only keeps JetStream's metadata
  # majority when a region is lost. Client ports NATS_PORT + 21..23, monitor + 4021..23, routes
  # + 5021..23, gateways + 6021..23; the links authenticate (passwords generated for this run).
  route_password=$(cqrsi_nats_secret "$BENCH" nats-route)
  gateway_password=$(cqrsi_nats_secret "$BENCH" nats-gateway)
  i=1
  for region in east west witness; do
    gateways=() j=1
    for other in east west witness; do
      [ "$other" = "$region" ] || gateways+=("$other=127.0.0.1:$((NATS_PORT + 6020 + j))")
      j=$((j + 1))
    done
    CQRSI_NATS_EXTRA_CONF="server_name: \"$region-1\"
$(cqrsi_nats_cluster_conf "$region" "127.0.0.1:$((NATS_PORT + 5020 + i))" "$route_password" "127.0.0.1:$((NATS_PORT + 5020 + i))")
$(cqrsi_nats_gateway_conf "$region" "127.0.0.1:$((NATS_PORT + 6020 + i))" "$gateway_password" "${gateways[@]}")" \
      cqrsi_start_nats "$BENCH/region-$region" $((NATS_PORT + 20 + i)) $((NATS_PORT + 4020 + i))
    i=$((i + 1))
  done
  export BENCH_EAST_NATS="nats://127.0.0.1:$((NATS_PORT + 21))" BENCH_WEST_NATS="nats://127.0.0.1:$((NATS_PORT + 22))"
  export BENCH_EAST_NATS_PID_FILE="$BENCH/region-east/nats.pid"
fi
cqrsi_start_postgres "$BENCH/pg" "$PG_PORT"

echo "==> building"
dotnet build CqrsInference.sln -c Release -nologo -v quiet -clp:ErrorsOnly

convert -size 520x48 xc:white -font DejaVu-Sans -pointsize 28 -fill black -gravity center \
  -annotate 0 'Invoice 4711 paid in full' -trim +repage -bordercolor white -border 6 "$BENCH/line.png"

export BENCH_APP_DLL="${CQRSI_BENCH_APP_DLL:-$ROOT/src/Api/bin/Release/net10.0/CqrsInference.Api.dll}"
export BENCH_NATS="nats://127.0.0.1:$NATS_PORT"
export BENCH_PG="Host=127.0.0.1;Port=$PG_PORT;Database=cqrsi;Username=postgres;Maximum Pool Size=50"
export BENCH_DIR="$BENCH" BENCH_PG_PORT="$PG_PORT"
# The event log's partitions: the same number as in the nats-server's mapping.
export Topology__Partitions="${CQRSI_PARTITIONS:-2}"
export BENCH_MODELS="$ROOT/.models" BENCH_MANIFEST="$ROOT/models/manifest.json" BENCH_OCR_IMAGE="$BENCH/line.png"
dotnet tools/Bench/bin/Release/net10.0/CqrsInference.Bench.dll "$@"
