#!/usr/bin/env bash
# Scale-out benchmark (issue 13, SPEC §16): publishes the gateway in Release and runs bench/ScaleOut, which starts
# a backend in its own process, a redis-server and three gateway replicas on free loopback ports, and measures
# admin change propagation, a 60/min key across the replicas, a 10 s Redis outage under load, and single-replica
# req/s with Redis on vs off (wrk). Needs redis-server and wrk (Debian packages; installed when missing).
# The results table goes to bench/results/scaleout-<time>.md. RPM_SECONDS (default 120), LOAD_SECONDS (default 10).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
for tool in redis-server wrk; do
  if ! command -v "$tool" >/dev/null; then
    echo "installing $tool (Debian package)..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  fi
done
work=$(mktemp -d /tmp/gateway-scaleout.XXXXXX)
trap 'rm -rf "$work"' EXIT
results="$root/bench/results"
mkdir -p "$results"
echo "building (Release)..." >&2
dotnet publish "$root/src/ProxyHost" -c Release -o "$work/proxy" --nologo -v q >/dev/null
dotnet publish "$root/bench/ScaleOut" -c Release -o "$work/scaleout" --nologo -v q >/dev/null
report="$results/scaleout-$(date -u +%Y-%m-%dT%H%MZ).md"
dotnet "$work/scaleout/ScaleOut.dll" "$work/proxy/ProxyHost.dll" "$work" "$report" "$root/bench/post.lua" "${RPM_SECONDS:-120}" "${LOAD_SECONDS:-10}"
echo "written to $report" >&2
