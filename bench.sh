#!/usr/bin/env bash
# Benchmarks against real servers on loopback (separate ports and data from run.sh and test.sh).
#   ./bench.sh e2e [jobs] [concurrency]     submit -> succeeded through the whole pipeline (mlp-test)
#   ./bench.sh ocr-batching [jobs]          PP-OCRv4 items/s, dynamic batching vs batch size 1
#   ./bench.sh replay [jobs]                record jobs×3 events, then replay the projection and verify the chains
#   ./bench.sh analytics [events]           bulk-load ≥1M events, time the async roll-ups catch-up and analytics queries
#   ./bench.sh load [jobs] [concurrency]    the inline baseline vs the pipeline, closed and open loop (issue 9)
#   ./bench.sh overflow [inference ms] [baseline jobs/s] [burst s]
#                                           two regions, a 10x burst in one: queue wait with overflow off vs on
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
cqrsi_start_nats "$BENCH/nats" "$NATS_PORT" $((NATS_PORT + 4000))
cqrsi_start_postgres "$BENCH/pg" "$PG_PORT"

echo "==> building"
dotnet build CqrsInference.sln -c Release -nologo -v quiet -clp:ErrorsOnly

convert -size 520x48 xc:white -font DejaVu-Sans -pointsize 28 -fill black -gravity center \
  -annotate 0 'Invoice 4711 paid in full' -trim +repage -bordercolor white -border 6 "$BENCH/line.png"

export BENCH_APP_DLL="$ROOT/src/Api/bin/Release/net10.0/CqrsInference.Api.dll"
export BENCH_NATS="nats://127.0.0.1:$NATS_PORT"
export BENCH_PG="Host=127.0.0.1;Port=$PG_PORT;Database=cqrsi;Username=postgres;Maximum Pool Size=50"
export BENCH_DIR="$BENCH"
export BENCH_MODELS="$ROOT/.models" BENCH_MANIFEST="$ROOT/models/manifest.json" BENCH_OCR_IMAGE="$BENCH/line.png"
dotnet tools/Bench/bin/Release/net10.0/CqrsInference.Bench.dll "$@"
