#!/usr/bin/env bash
# What observability costs under load, measured A/B in one run: the same Release build twice, with
# ModelRouting:Observability:Enabled false (off) and true (on), both running; after a warm-up of each, wrk
# alternates between them for ROUNDS rounds, so drift in the machine's load hits both alike (bench/run.sh's
# nometrics mode measures them one after the other instead). wrk and the backend on core 0, proxies on core 1.
#
#   bash bench/observability-ab.sh                 # 1 KB bodies, 3 rounds of 15 s after 40 s warm-up each
#
# Knobs: SIZE (bytes, default 1024; several, "1024 16384", are measured one after the other by the same processes,
# each size after one untimed round of its own), ROUNDS (3), DURATION (s per cell, 15), WARMUP (s, 40), CONNECTIONS (32),
# PAIRS (1): how many off/on pairs of processes to start and rotate through (ports OFF_PORT, ON_PORT and up by 2).
# COMPARE=keys measures client keys instead (SPEC §14): off is the gateway without keys, on the same build with 100
# client keys and limits on every key and on the endpoint (high enough that nothing is refused). wrk sends key 42 to
# both sides, as the same client would: OpenAI's SDKs send an Authorization header whether or not the gateway checks
# it (they refuse to start without a key), so only the gateway's configuration differs. OFF_KEY= (empty) sends no
# header to the off side, which also counts Kestrel reading the header (about 0.6 µs a request) against keys:
#   COMPARE=keys SIZE="1024 16384" bash bench/observability-ab.sh
# COMPARE=bare measures the gateway (shipped defaults) against bare YARP, the same build with --no-model-routing (off),
# rotated over process pairs as above (bench/run.sh measures one process of each, one after the other):
#   COMPARE=bare PAIRS=3 SIZE="1024 16384" bash bench/observability-ab.sh
set -euo pipefail
SIZE=${SIZE:-1024}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-40}
CONNECTIONS=${CONNECTIONS:-32}
PAIRS=${PAIRS:-1}
COMPARE=${COMPARE:-observability}
OFF_KEY=${OFF_KEY-sk-bench-42}
BACKEND_PORT=${BACKEND_PORT:-19201}
OFF_PORT=${OFF_PORT:-19202}
ON_PORT=${ON_PORT:-19203}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/gateway-ab.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

echo "building (Release)..." >&2
dotnet publish "$root/src/ProxyHost" -c Release -o "$work/proxy" --nologo -v q >/dev/null
dotnet publish "$root/bench/BenchBackend" -c Release -o "$work/backend" --nologo -v q >/dev/null
python3 "$root/bench/bodies.py" "$work" bench-model $SIZE >/dev/null
cat > "$work/bench.json" <<JSON
{
  "Logging": { "LogLevel": { "Default": "Warning" } },
  "ReverseProxy": {
    "Routes": { "openai": { "ClusterId": "bench", "Match": { "Path": "/v1/{**catch-all}" } } },
    "Clusters": { "bench": { "Destinations": { "b": { "Address": "http://127.0.0.1:$BACKEND_PORT/" } } } }
  },
  "ModelRouting": {
    "Endpoints": [ { "Id": "bench-model", "UpstreamModel": "bench-upstream", "Cluster": "bench", "MaxContextLength": 1000000, "IsDefault": true } ]
  }
}
JSON

# The keys variant's deployment: 100 limited keys and a limited endpoint.
python3 - "$work" <<'PY'
import hashlib, json, sys
work = sys.argv[1]
config = json.load(open(f"{work}/bench.json"))
config["ModelRouting"]["Keys"] = [
    {"Id": f"team-{i}", "KeyHash": hashlib.sha256(f"sk-bench-{i}".encode()).hexdigest(), "Models": ["*"],
     "Limits": {"RequestsPerMinute": 100000000, "TokensPerMinute": 1000000000000, "MaxConcurrent": 100000}}
    for i in range(100)]
config["ModelRouting"]["Endpoints"][0]["Limits"] = {"RequestsPerMinute": 100000000, "TokensPerMinute": 1000000000000}
json.dump(config, open(f"{work}/bench-keys.json", "w"))
PY

wait_for() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1" >&2; return 1; }
taskset -c 0 dotnet "$work/backend/BenchBackend.dll" --urls "http://127.0.0.1:$BACKEND_PORT" >/dev/null 2>&1 & pids+=($!)
proxy() { # $1 port, $2 enabled
  local config="$work/bench.json" observability="$2" routing=()
  if [ "$COMPARE" = keys ]; then
    observability=true
    [ "$2" = true ] && config="$work/bench-keys.json"
  elif [ "$COMPARE" = bare ]; then
    observability=true
    [ "$2" = false ] && routing=(--no-model-routing)
  fi
  taskset -c 1 dotnet "$work/proxy/ProxyHost.dll" --config "$config" "${routing[@]}" --urls "http://127.0.0.1:$1" \
    --ModelRouting:Admin:Urls= --ModelRouting:Admin:StateFile= "--ModelRouting:Observability:Enabled=$observability" >/dev/null 2>&1 &
  pids+=($!)
}
# PAIRS pairs of processes: a process keeps its speed for its life, and that speed differs by up to ±15% from one
# process to the next on this machine, so one pair alone cannot settle a few per cent.
declare -a sides ports procs
for pair in $(seq 0 $((PAIRS - 1))); do
  for side in off on; do
    port=$((OFF_PORT + 2 * pair)); [ "$side" = on ] && port=$((ON_PORT + 2 * pair))
    enabled=false; [ "$side" = on ] && enabled=true
    proxy "$port" "$enabled"
    sides+=("$side"); ports+=("$port"); procs+=($!)
  done
done
wait_for "http://127.0.0.1:$BACKEND_PORT/"
for port in "${ports[@]}"; do wait_for "http://127.0.0.1:$port/v1/models"; done

run() { # $1 port, $2 seconds, $3 side; the keys variant sends a key to the on side, and OFF_KEY to the off side
  local auth=""
  if [ "$COMPARE" = keys ]; then auth="sk-bench-42"; [ "$3" = off ] && auth="$OFF_KEY"; fi
  BODY_FILE="$work/body-$size.json" AUTH="$auth" taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"${2}s" -s "$root/bench/post.lua" "http://127.0.0.1:$1/v1/chat/completions"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
size=${SIZE%% *}
echo "warm-up ${WARMUP}s each..." >&2
for i in "${!ports[@]}"; do run "${ports[$i]}" "$WARMUP" "${sides[$i]}" >/dev/null; done

hz=$(getconf CLK_TCK)
key_note=""; [ "$COMPARE" = keys ] && key_note=" Off side sent ${OFF_KEY:-no key}, on side sk-bench-42."
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
summary=()
for size in $SIZE; do
  # One more untimed round of cells: a process that sat idle since its warm-up answers slowly at first (its pages
  # reclaimed meanwhile), which would otherwise weigh on the first round alone; it also warms up a new size.
  for i in "${!ports[@]}"; do run "${ports[$i]}" "$DURATION" "${sides[$i]}" >/dev/null; done

  echo "${COMPARE^} A/B, $(date -u +%Y-%m-%d), $(nproc) cores, .NET $(dotnet --version), ${size} B bodies, wrk -c$CONNECTIONS, ${DURATION}s cells, $PAIRS pair(s) of processes, load average $(cut -d' ' -f1-3 /proc/loadavg).$key_note"
  echo
  echo "| round | pair | off req/s | on req/s | on ÷ off | off CPU µs/req | on CPU µs/req |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  ratios=(); offs=(); ons=(); offc=(); onc=()
  for round in $(seq 1 "$ROUNDS"); do
    for pair in $(seq 0 $((PAIRS - 1))); do
      declare -A r c
      order="off on"; [ $(((round + pair) % 2)) = 0 ] && order="on off" # either side first, in turn
      for side in $order; do
        i=$((2 * pair)); [ "$side" = on ] && i=$((i + 1))
        before=$(ticks "${procs[$i]}")
        out=$(run "${ports[$i]}" "$DURATION" "$side")
        after=$(ticks "${procs[$i]}")
        r[$side]=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
        requests=$(awk '/requests in/ { print $1 }' <<<"$out")
        c[$side]=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
      done
      ratio=$(awk -v a="${r[on]}" -v b="${r[off]}" 'BEGIN { printf "%.3f", a / b }')
      ratios+=("$ratio"); offs+=("${r[off]}"); ons+=("${r[on]}"); offc+=("${c[off]}"); onc+=("${c[on]}")
      echo "| $round | $((pair + 1)) | ${r[off]} | ${r[on]} | $ratio | ${c[off]} | ${c[on]} |"
    done
  done
  line="${size} B: median of the cells: on ÷ off $(median "${ratios[@]}"); req/s off $(median "${offs[@]}"), on $(median "${ons[@]}") ($(awk -v a="$(median "${ons[@]}")" -v b="$(median "${offs[@]}")" 'BEGIN { printf "%.3f", a / b }')); proxy CPU per request off $(median "${offc[@]}") µs, on $(median "${onc[@]}") µs."
  summary+=("$line")
  echo
  echo "$line"
  echo
done
[ "${#summary[@]}" -gt 1 ] && { echo "In this run:"; printf -- '- %s\n' "${summary[@]}"; }
exit 0
