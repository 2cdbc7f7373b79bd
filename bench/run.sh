#!/usr/bin/env bash
# Load benchmark of the whole proxy, in one run: the backend direct, our host with model routing off (bare
# YARP), and the gateway, at chat bodies of about 1 KB, 16 KB, 256 KB and 1 MB; plus streaming time to
# first byte through the gateway vs direct. wrk and the backend share core 0; the proxy has core 1.
#
#   bash bench/run.sh                      # full run (about 20 minutes)
#   WARMUP=20 DURATION=10 bash bench/run.sh  # quick look (JIT not settled: ratios understate the proxies)
#
# Knobs: WARMUP (s, first size of each proxy; tiered PGO needs 45-60 s under load), WARMUP_NEXT (s, later
# sizes), WARMUP_TTFB (s of streaming load before the time-to-first-byte samples), DURATION (s), CONNECTIONS, SIZES, PROXY_ENV (extra environment for the proxy, e.g.
# "DOTNET_gcServer=1"), MODES ("direct bare gateway"; nometrics is the gateway with
# ModelRouting:Observability:Enabled=false, so the report shows what metrics cost in the same run).
set -euo pipefail
WARMUP=${WARMUP:-60}
WARMUP_NEXT=${WARMUP_NEXT:-15}
DURATION=${DURATION:-30}
CONNECTIONS=${CONNECTIONS:-32}
SIZES=${SIZES:-"1024 16384 262144 1048576"}
MODES=${MODES:-"direct bare gateway nometrics"}
PROXY_ENV=${PROXY_ENV:-}
BACKEND_PORT=${BACKEND_PORT:-19101}
PROXY_PORT=${PROXY_PORT:-19102}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/gateway-bench.XXXXXX)
results="$root/bench/results"
mkdir -p "$results"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)..." >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

echo "building (Release)..." >&2
dotnet publish "$root/src/ProxyHost" -c Release -o "$work/proxy" --nologo -v q >/dev/null
dotnet publish "$root/bench/BenchBackend" -c Release -o "$work/backend" --nologo -v q >/dev/null
python3 "$root/bench/bodies.py" "$work" bench-model $SIZES

cat > "$work/bench.json" <<JSON
{
  "Logging": { "LogLevel": { "Default": "Warning" } },
  "ReverseProxy": {
    "Routes": { "openai": { "ClusterId": "bench", "Match": { "Path": "/v1/{**catch-all}" } } },
    "Clusters": { "bench": { "Destinations": { "b": { "Address": "http://127.0.0.1:$BACKEND_PORT/" } } } }
  },
  "ModelRouting": {
    "Endpoints": [
      { "Id": "bench-model", "UpstreamModel": "bench-upstream", "Cluster": "bench", "MaxContextLength": 1000000, "IsDefault": true }
    ]
  }
}
JSON

wait_for() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1" >&2; return 1; }

taskset -c 0 dotnet "$work/backend/BenchBackend.dll" --urls "http://127.0.0.1:$BACKEND_PORT" >/dev/null 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$BACKEND_PORT/"

start_proxy() { # $1 = extra args
  # shellcheck disable=SC2086
  env $PROXY_ENV taskset -c 1 dotnet "$work/proxy/ProxyHost.dll" --config "$work/bench.json" --urls "http://127.0.0.1:$PROXY_PORT" --ModelRouting:Admin:Urls= --ModelRouting:Admin:StateFile= $1 >"$work/proxy.log" 2>&1 &
  proxy_pid=$!
  pids+=("$proxy_pid")
  wait_for "http://127.0.0.1:$PROXY_PORT/healthz" || { cat "$work/proxy.log" >&2; exit 1; }
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
to_us() { # wrk latency like 1.23ms / 456.78us / 1.01s -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n }'
}

run_wrk() { # $1 url, $2 body file, $3 seconds -> prints wrk output
  BODY_FILE="$2" taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${3}s" --latency -s "$root/bench/post.lua" "$1"
}

ticks_per_second=$(getconf CLK_TCK)
declare -A rps p50 p99 cpu rss
for mode in $MODES; do
  url="http://127.0.0.1:$PROXY_PORT/v1/chat/completions"
  proxy_pid=""
  case $mode in
    direct) url="http://127.0.0.1:$BACKEND_PORT/v1/chat/completions" ;;
    bare) start_proxy "--no-model-routing" ;;
    gateway) start_proxy "" ;;
    nometrics) start_proxy "--ModelRouting:Observability:Enabled=false" ;;
  esac
  first=1
  for size in $SIZES; do
    warm=$WARMUP_NEXT; [ "$first" = 1 ] && warm=$WARMUP; first=0
    echo "$mode $size: warm-up ${warm}s, measure ${DURATION}s" >&2
    run_wrk "$url" "$work/body-$size.json" "$warm" >/dev/null
    before=0; [ -n "$proxy_pid" ] && before=$(cpu_ticks "$proxy_pid")
    out=$(run_wrk "$url" "$work/body-$size.json" "$DURATION")
    after=0; [ -n "$proxy_pid" ] && after=$(cpu_ticks "$proxy_pid")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    errors=$(awk '/Non-2xx|Socket errors/ { print }' <<<"$out")
    [ -n "$errors" ] && echo "  $mode $size: $errors" >&2
    rps[$mode,$size]=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
    p50[$mode,$size]=$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    p99[$mode,$size]=$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    if [ -n "$proxy_pid" ]; then
      cpu[$mode,$size]=$(awk -v t=$((after - before)) -v r="$requests" -v hz="$ticks_per_second" 'BEGIN { printf "%.0f", t / hz * 1e6 / r }')
    else
      cpu[$mode,$size]="-"
    fi
  done
  if [ -n "$proxy_pid" ]; then
    rss[$mode]=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$proxy_pid/status")
    kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
  else
    rss[$mode]="-"
  fi
done

# Streaming time to first byte: sequential requests, median, direct vs gateway.
ttfb() { # $1 url
  for _ in $(seq 1 50); do
    curl -s -o /dev/null -w '%{time_starttransfer}\n' -H 'Content-Type: application/json' --data-binary @"$work/body-stream.json" "$1"
  done | sort -n | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] * 1000 }'
}
ttfb_direct=$(ttfb "http://127.0.0.1:$BACKEND_PORT/v1/chat/completions")
for mode in bare gateway; do
  args=""; [ "$mode" = bare ] && args="--no-model-routing"
  start_proxy "$args"
  run_wrk "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" "$work/body-stream.json" "${WARMUP_TTFB:-20}" >/dev/null # let the JIT settle on this path
  declare "ttfb_$mode=$(ttfb "http://127.0.0.1:$PROXY_PORT/v1/chat/completions")"
  kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
done

report="$results/$(date -u +%Y-%m-%dT%H%MZ).md"
{
  echo "Load benchmark, $(date -u +%Y-%m-%d), $(nproc) cores ($(awk -F: '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/^ *//')), .NET $(dotnet --version)."
  echo "wrk -t1 -c$CONNECTIONS, ${DURATION}s per cell after ${WARMUP}s (first size) / ${WARMUP_NEXT}s warm-up; wrk and backend on core 0, proxy on core 1.${PROXY_ENV:+ Proxy environment: $PROXY_ENV.}"
  echo
  echo "| body | mode | req/s | p50 µs | p99 µs | proxy CPU µs/req | vs bare req/s | p99 − bare µs |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for size in $SIZES; do
    for mode in $MODES; do
      ratio="-"; dp99="-"
      if [ -n "${rps[bare,$size]:-}" ] && [ "$mode" != direct ]; then
        ratio=$(awk -v a="${rps[$mode,$size]}" -v b="${rps[bare,$size]}" 'BEGIN { printf "%.2f", a / b }')
        dp99=$(awk -v a="${p99[$mode,$size]}" -v b="${p99[bare,$size]}" 'BEGIN { printf "%+.0f", a - b }')
      fi
      echo "| $size | $mode | ${rps[$mode,$size]} | ${p50[$mode,$size]} | ${p99[$mode,$size]} | ${cpu[$mode,$size]} | $ratio | $dp99 |"
    done
  done
  echo
  for size in $SIZES; do
    if [ -n "${rps[gateway,$size]:-}" ] && [ -n "${rps[nometrics,$size]:-}" ]; then
      echo "Observability at $size B: gateway ÷ gateway without it = $(awk -v a="${rps[gateway,$size]}" -v b="${rps[nometrics,$size]}" 'BEGIN { printf "%.3f", a / b }') req/s, p99 $(awk -v a="${p99[gateway,$size]}" -v b="${p99[nometrics,$size]}" 'BEGIN { printf "%+.0f", a - b }') µs."
    fi
  done
  echo
  echo "Peak RSS (MiB): bare ${rss[bare]:--}, gateway ${rss[gateway]:--}, gateway without observability ${rss[nometrics]:--}. Streaming time to first byte (median of 50 sequential requests): direct ${ttfb_direct} ms, bare YARP ${ttfb_bare} ms, gateway ${ttfb_gateway} ms."
} | tee "$report"
echo "written to $report" >&2
