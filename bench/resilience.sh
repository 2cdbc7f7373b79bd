#!/usr/bin/env bash
# Resilience benchmark (issue 10, SPEC §13 failover): publishes the gateway and the bench backend in Release and runs
# bench/Resilience, which starts its own gateways and backends on 127.0.0.1:BASE_PORT..BASE_PORT+11, runs seven
# scenarios (each bounded in time, cleaning up its processes) and writes a results table to bench/results/.
#
#   bash bench/resilience.sh                                   # everything (~15 minutes, 10 of them the soak)
#   SOAK_SECONDS=60 FUZZ_COUNT=20000 bash bench/resilience.sh  # quick look
#   SCENARIOS="3 4" bash bench/resilience.sh                   # some scenarios only
#
# Knobs: SCENARIOS, SOAK_SECONDS (600), FUZZ_COUNT (100000), RELOAD_SECONDS (60), RELOAD_IN_PLACE (0|1), WARMUP (10),
# BASE_PORT (19300). Exit status 1 when a scenario could not run; a missed target is reported in the table.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/gateway-resilience.XXXXXX)
results="$root/bench/results"
mkdir -p "$results"
runner=""
cleanup() {
  [ -n "$runner" ] && kill "$runner" 2>/dev/null || true
  wait 2>/dev/null || true
  # The program kills its children itself; this catches any left if it was killed hard.
  if [ -f "$work/children.pids" ]; then while read -r p; do kill -9 "$p" 2>/dev/null || true; done <"$work/children.pids"; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "building (Release)..." >&2
dotnet publish "$root/src/ProxyHost" -c Release -o "$work/proxy" --nologo -v q >/dev/null
dotnet publish "$root/bench/BenchBackend" -c Release -o "$work/backend" --nologo -v q >/dev/null
dotnet publish "$root/bench/Resilience" -c Release -o "$work/resilience" --nologo -v q >/dev/null

report="$results/resilience-$(date -u +%Y-%m-%dT%H%MZ).md"
dotnet "$work/resilience/Resilience.dll" "$work/proxy/ProxyHost.dll" "$work/backend/BenchBackend.dll" "$work" "$report" &
runner=$!
status=0
wait "$runner" || status=$?
runner=""
echo "written to $report" >&2
exit "$status"
