#!/usr/bin/env bash
# Quota benchmark (issue 11, SPEC §14): publishes the gateway in Release and runs bench/Quotas, which starts a
# backend in its own process and the gateway on free loopback ports, then
#   A. a key at 60 requests/min hammered by 32 clients (A_SECONDS, default 120);
#   B. a key at 10,000 tokens/min with streaming and non-streaming requests whose usage differs from the
#      estimate (B_SECONDS, default 180).
# The results table goes to bench/results/quotas-<time>.md. The keys-on/keys-off load figure is
# COMPARE=keys bash bench/observability-ab.sh (both builds up at once, wrk alternating between them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/gateway-quotas.XXXXXX)
trap 'rm -rf "$work"' EXIT
results="$root/bench/results"
mkdir -p "$results"
echo "building (Release)..." >&2
dotnet publish "$root/src/ProxyHost" -c Release -o "$work/proxy" --nologo -v q >/dev/null
dotnet publish "$root/bench/Quotas" -c Release -o "$work/quotas" --nologo -v q >/dev/null
report="$results/quotas-$(date -u +%Y-%m-%dT%H%MZ).md"
dotnet "$work/quotas/Quotas.dll" "$work/proxy/ProxyHost.dll" "$work" "$report" "${A_SECONDS:-120}" "${B_SECONDS:-180}"
echo "written to $report" >&2
