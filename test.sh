#!/usr/bin/env bash
# Sets up what the tests need (packages, models, a fresh PostgreSQL on 127.0.0.1:55433), builds with
# warnings as errors and runs every test. Tests start their own nats-server processes.
# Last line: "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
set -e

PG_DIR="$ROOT/.data/test-pg"
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cqrsi_install_packages
cqrsi_install_test_tools
cqrsi_install_browser
cqrsi_install_models "$ROOT/.models"
cqrsi_install_web_assets "$ROOT/src/Api/wwwroot/lib"

cqrsi_stop_postgres "$PG_DIR" >/dev/null 2>&1 || true
rm -rf "$PG_DIR"
# 55433 unless something (another checkout's tests, say) already listens there.
PG_PORT=${CQRSI_TEST_PG_PORT:-55433}
while port_busy "$PG_PORT"; do PG_PORT=$((PG_PORT + 1)); done
CQRSI_PG_FSYNC=off cqrsi_start_postgres "$PG_DIR" "$PG_PORT"
trap 'cqrsi_stop_postgres "$PG_DIR" >/dev/null 2>&1 || true' EXIT

echo "==> building"
dotnet build CqrsInference.sln -c Release -nologo -v quiet -clp:ErrorsOnly
set +e

export CQRSI_TEST_PG="Host=127.0.0.1;Port=$PG_PORT;Database=cqrsi;Username=postgres;Maximum Pool Size=100"
export CQRSI_MODELS="$ROOT/.models" CQRSI_MANIFEST="$ROOT/models/manifest.json"
results="$ROOT/.data/test-results"
rm -rf "$results"
echo "==> testing"
dotnet test CqrsInference.sln -c Release --no-build -nologo --logger "console;verbosity=normal" \
  --logger "trx;LogFileName=tests.trx" --results-directory "$results" "$@"
status=$?

trx=$(ls "$results"/*.trx 2>/dev/null | head -n 1)
if [ -z "$trx" ]; then
  echo "0 passed, 1 failed"
  exit 1
fi
counters=$(grep -o '<Counters [^>]*>' "$trx")
count() { echo "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
passed=$(count passed) failed=$(count failed) total=$(count total) executed=$(count executed)
skipped=$((total - executed))
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
if [ "$failed" -gt 0 ]; then
  # The console log is long; name each failure again where a truncated log still shows it.
  echo "==> failed tests (full log: $trx)"
  sed 's/&#xD;//g' <"$trx" | tr -d '\r' | awk '
    /<UnitTestResult / && /outcome="Failed"/ { if (match($0, /testName="[^"]*"/)) { name = substr($0, RSTART + 10, RLENGTH - 11); printf "FAILED %s\n", name; want = 1 } }
    want && /<Message>/ { sub(/.*<Message>/, ""); shown = 0; inmsg = 1 }
    inmsg { line = $0; sub(/<\/Message>.*/, "", line); if (shown < 6) printf "    %s\n", substr(line, 1, 300); shown++; if ($0 ~ /<\/Message>/) { inmsg = 0; want = 0 } }
  '
fi
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
