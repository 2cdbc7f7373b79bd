#!/usr/bin/env bash
# Load-balancing benchmark (issue 14, SPEC §17): a simulated vLLM fleet (bench/FleetSim, REPLICAS replicas)
# behind the gateway, one cluster balanced with RoundRobin, PowerOfTwoChoices and ModelAware in turn, on the
# workloads of bench/FleetLoad/Workloads.cs: (a) chat sessions sharing long system prompts, (b) many LoRA
# adapters with skewed popularity, (c) uniform short prompts. Every run starts a fresh fleet and a fresh
# gateway on free loopback ports and sends the same seeded schedule. Prints a Markdown table.
#
#   bash bench/balancing.sh                  # the README's run (about 10 minutes with the build)
#   DURATION=10 WORKLOADS="c" bash bench/balancing.sh
#
# Knobs: DURATION (s of arrivals per run), RATE_A (sessions/s), RATE_B, RATE_C (requests/s), SEED, REPLICAS,
# POLICIES, WORKLOADS, SIM_ARGS (extra FleetSim parameters, e.g. "--PrefillMsPerToken 0.2").
set -euo pipefail
DURATION=${DURATION:-30}
RATE_A=${RATE_A:-16}
RATE_B=${RATE_B:-60}
RATE_C=${RATE_C:-50}
SEED=${SEED:-1}
REPLICAS=${REPLICAS:-4}
POLICIES=${POLICIES:-"RoundRobin PowerOfTwoChoices ModelAware"}
WORKLOADS=${WORKLOADS:-"a b c"}
SIM_ARGS=${SIM_ARGS:-}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/gateway-balancing.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "building (Release)..." >&2
dotnet publish "$root/src/ProxyHost" -c Release -o "$work/proxy" --nologo -v q >/dev/null
dotnet publish "$root/bench/FleetSim" -c Release -o "$work/sim" --nologo -v q >/dev/null
dotnet publish "$root/bench/FleetLoad" -c Release -o "$work/load" --nologo -v q >/dev/null

free_ports() { python3 -c "
import socket,sys
socks=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(('127.0.0.1',0))
print(' '.join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()" "$1"; }
wait_for() { for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "not up: $1" >&2; return 1; }
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }

write_config() { # policy gateway-port sim-ports...
  local policy=$1; shift
  python3 - "$work/gateway.json" "$policy" "$@" <<'PY'
import json, sys
path, policy, ports = sys.argv[1], sys.argv[2], sys.argv[3:]
endpoints = [{"Id": "sim-base", "Cluster": "fleet", "MaxContextLength": 65536, "IsDefault": True}]
endpoints += [{"Id": f"sim-base:lora-{i:02d}", "BaseModel": "sim-base", "Adapter": f"lora-{i:02d}", "Cluster": "fleet", "MaxContextLength": 65536} for i in range(32)]
config = {
  "Logging": {"LogLevel": {"Default": "Warning"}},
  "ReverseProxy": {
    "Routes": {"openai": {"ClusterId": "fleet", "Match": {"Path": "/v1/{**catch-all}"}}},
    "Clusters": {"fleet": {"LoadBalancingPolicy": policy,
      "Destinations": {f"r{i}": {"Address": f"http://127.0.0.1:{p}/"} for i, p in enumerate(ports)}}},
  },
  "ModelRouting": {"Endpoints": endpoints, "Admin": {"Urls": ""}},
}
json.dump(config, open(path, "w"), indent=1)
PY
}

results="$work/results.jsonl"
for workload in $WORKLOADS; do
  case $workload in a) rate=$RATE_A ;; b) rate=$RATE_B ;; c) rate=$RATE_C ;; esac
  for policy in $POLICIES; do
    read -r -a ports <<<"$(free_ports $((REPLICAS + 1)))"
    gateway_port=${ports[0]}
    sim_ports=("${ports[@]:1}")
    dotnet "$work/sim/FleetSim.dll" --ports "$(IFS=,; echo "${sim_ports[*]}")" --Seed "$SEED" $SIM_ARGS >"$work/sim.log" 2>&1 &
    pids+=($!)
    write_config "$policy" "${sim_ports[@]}"
    dotnet "$work/proxy/ProxyHost.dll" --urls "http://127.0.0.1:$gateway_port" --config "$work/gateway.json" --ModelRouting:Admin:Urls= >"$work/gateway.log" 2>&1 &
    pids+=($!)
    wait_for "http://127.0.0.1:${sim_ports[0]}/metrics"
    wait_for "http://127.0.0.1:$gateway_port/v1/models"
    echo "workload $workload, $policy, rate $rate, ${DURATION}s..." >&2
    dotnet "$work/load/FleetLoad.dll" --url "http://127.0.0.1:$gateway_port" --workload "$workload" --rate "$rate" \
      --duration "$DURATION" --seed "$SEED" --label "$policy" | tee -a "$results" >&2
    for port in "${sim_ports[@]}"; do curl -s "http://127.0.0.1:$port/metrics" | grep '^sim:' | tr '\n' ' ' >&2; echo >&2; done
    stop
  done
done

python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
names = {"a": "(a) chat sessions, shared system prompts", "b": "(b) 32 LoRA adapters, Zipf popularity", "c": "(c) uniform short prompts"}
print("| workload | policy | offered | requests | failed | TTFT p50 ms | TTFT p90 ms | e2e p50 ms | e2e p90 ms | throughput req/s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    unit = "sessions/s" if r["workload"] == "a" else "req/s"
    print(f"| {names[r['workload']]} | {r['policy']} | {r['rate']} {unit} | {r['requests']} | {r['failed']} | {r['ttft_p50_ms']} | {r['ttft_p90_ms']} | {r['e2e_p50_ms']} | {r['e2e_p90_ms']} | {r['throughput_rps']} |")
for w in sorted({r["workload"] for r in rows}):
    by = {r["policy"]: r for r in rows if r["workload"] == w}
    if "ModelAware" in by and "PowerOfTwoChoices" in by:
        m, p = by["ModelAware"], by["PowerOfTwoChoices"]
        print(f"\n{names[w]}: ModelAware / PowerOfTwoChoices: TTFT p50 {m['ttft_p50_ms']/p['ttft_p50_ms']:.2f}x, TTFT p90 {m['ttft_p90_ms']/p['ttft_p90_ms']:.2f}x, "
              f"e2e p50 {m['e2e_p50_ms']/p['e2e_p50_ms']:.2f}x, e2e p90 {m['e2e_p90_ms']/p['e2e_p90_ms']:.2f}x, throughput {m['throughput_rps']/p['throughput_rps']:.2f}x")
PY
