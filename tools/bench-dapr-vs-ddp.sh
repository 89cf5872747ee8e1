#!/usr/bin/env bash
# Issue 16: PyTorch DDP, DaprTrain's embedded mode and the Dapr services over the sidecar double, measured in one run and
# interleaved (for each pass and each N: DDP and the embedded mode, then the Dapr jobs), so that the ratios compare
# figures taken under the same load; prints one Markdown table with the ratios, then the Dapr jobs' phases.
#
#   tools/bench-dapr-vs-ddp.sh [--passes P] [--workers "2 4"] [--topologies "p2p ps"] [--variant 'LABEL:NAME=VALUE;...']...
#                              [--rounds R] [--from F] [--no-baselines] [--no-build]
#
# --variant: each Dapr job runs once per variant, the variants back to back (in reverse order every other pass), with the variant's settings in every
#   service's environment (e.g. --variant '1 thread:Job__TorchThreads=1' --variant 'libtorch default:Job__TorchThreads=0').
#   Without one, the services' defaults.
# --rounds, --from: each Dapr job runs R rounds (default 400) and is measured from round F on (default 200). The rounds
#   before F are warm-up: the services' JIT and tiered compilation were most of the CPU of a round 10-40 window (perf).
# --no-baselines: the Dapr jobs only (for comparing variants; no ratios).
# DDP (tools/pytorch/ddp_bench.py on Debian's python3-torch for /usr/bin/python3) is skipped, saying why, where torch does
# not import; the embedded mode is measured all the same.
#
# What each figure is: DDP and embedded, `daprtrain bench --only pytorch --workers N` (MLP, batch 64 per worker, Adam
# 1e-3, 200 rounds, ms a round after 5 warm-up rounds). Dapr, the opt-in figures fact DaprBenchFigures: a clean job of
# the services as separate processes, each with its sidecar double (MLP, batch 64 per worker, Adam 2e-3, the shared
# MNIST split), the workers' mean wall ms a round over rounds F-R (ps: the server's too), and each process's CPU a round. The model and batch are the
# same; the data and learning rate do not change a round's work.
set -euo pipefail
cd "$(dirname "$0")/.."

passes=1
rounds=400
from=200
counts="2 4"
topologies="p2p ps"
baselines=1
build=1
variants=()
while [ $# -gt 0 ]; do
  case "$1" in
    --passes) passes="$2"; shift 2 ;;
    --workers) counts="$2"; shift 2 ;;
    --topologies) topologies="$2"; shift 2 ;;
    --variant) variants+=("$2"); shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --from) from="$2"; shift 2 ;;
    --no-baselines) baselines=0; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$passes" in ''|*[!0-9]*|0) echo "--passes must be a positive number (got '$passes')" >&2; exit 2 ;; esac
case "$rounds" in ''|*[!0-9]*) echo "--rounds takes a number (got '$rounds')" >&2; exit 2 ;; esac
case "$from" in ''|*[!0-9]*) echo "--from takes a number (got '$from')" >&2; exit 2 ;; esac
[ "$from" -ge 1 ] && [ $((rounds - from)) -ge 20 ] || { echo "--from must be at least 1 and at least 20 rounds below --rounds (got --from $from, --rounds $rounds)" >&2; exit 2; }
for n in $counts; do
  case "$n" in ''|*[!0-9]*) echo "--workers takes numbers (got '$n')" >&2; exit 2 ;; esac
done
for t in $topologies; do
  case "$t" in p2p|ps|p2p-scatter) ;; *) echo "--topologies: p2p, ps or p2p-scatter (got '$t')" >&2; exit 2 ;; esac
done
[ ${#variants[@]} -gt 0 ] || variants=("defaults:")
for v in "${variants[@]}"; do
  case "$v" in *:*) ;; *) echo "--variant is LABEL:NAME=VALUE;... (got '$v')" >&2; exit 2 ;; esac
done

if [ "$build" -eq 1 ]; then
  # Only what the run needs; the end-to-end project builds the services and the double it starts.
  [ "$baselines" -eq 0 ] || dotnet build services/DaprTrain.Cli -c Release -nologo -v quiet
  dotnet build tests/DaprTrain.EndToEnd.Tests -c Release -nologo -v quiet
fi

out=$(mktemp -d /tmp/daprtrain-bench-XXXXXX)
results="$out/results.jsonl"
: > "$results"
ddp_skipped=""
if [ "$baselines" -eq 1 ] && ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
  ddp_skipped="PyTorch DDP skipped: /usr/bin/python3 cannot import torch and numpy (sudo apt-get install python3-torch)"
fi
load() { cut -d' ' -f1 /proc/loadavg; }
started=$(date -u '+%Y-%m-%d %H:%M UTC')
start_load=$(uptime)

record() { # pass N what ms load [settings]
  /usr/bin/env python3 -c 'import json,sys; print(json.dumps({"pass":int(sys.argv[1]),"n":int(sys.argv[2]),"what":sys.argv[3],"ms":(None if sys.argv[4] in ("","skipped","failed") else float(sys.argv[4])),"note":sys.argv[4],"load":sys.argv[5],"file":sys.argv[6]}))' "$@" >> "$results"
}

for pass in $(seq 1 "$passes"); do
  for n in $counts; do
    if [ "$baselines" -eq 1 ]; then
      l=$(load)
      bench="$out/bench-p$pass-n$n.md"
      if dotnet services/DaprTrain.Cli/bin/Release/net10.0/daprtrain.dll bench --only pytorch --workers "$n" > "$bench" 2>&1; then
        # The section's row: | N | embedded ms | DDP ms (or skipped) | ...
        row=$(grep -E "^\| $n \| " "$bench" | tail -1)
        record "$pass" "$n" embedded "$(echo "$row" | awk -F'|' '{gsub(/ /,"",$3); print $3}')" "$l" "$bench"
        record "$pass" "$n" ddp "$(echo "$row" | awk -F'|' '{gsub(/ /,"",$4); print $4}')" "$l" "$bench"
      else
        echo "bench --only pytorch --workers $n failed; see $bench" >&2
        record "$pass" "$n" embedded failed "$l" "$bench"
        record "$pass" "$n" ddp failed "$l" "$bench"
      fi
    fi
    # The variants in turn, their order reversed every other pass: under a load that drifts, the one run second is not
    # always the one that meets the heavier load.
    order=("${variants[@]}")
    if [ $((pass % 2)) -eq 0 ]; then
      order=()
      for ((i = ${#variants[@]} - 1; i >= 0; i--)); do order+=("${variants[$i]}"); done
    fi
    for topology in $topologies; do
      for v in "${order[@]}"; do
        label="${v%%:*}"
        settings="${v#*:}"
        l=$(load)
        json="$out/dapr-$topology-n$n-p$pass-$(echo "$label" | tr -c 'A-Za-z0-9' '_').json"
        if DAPRTRAIN_FIGURES=1 DAPRTRAIN_BENCH_TOPOLOGY="$topology" DAPRTRAIN_BENCH_WORKERS="$n" DAPRTRAIN_BENCH_SETTINGS="$settings" DAPRTRAIN_BENCH_ROUNDS="$rounds" DAPRTRAIN_BENCH_FROM="$from" \
             DAPRTRAIN_BENCH_OUT="$json" dotnet test tests/DaprTrain.EndToEnd.Tests -c Release --no-build -nologo \
             --filter "FullyQualifiedName~DaprBenchFigures" > "${json%.json}.log" 2>&1 && [ -s "$json" ]; then
          record "$pass" "$n" "dapr $topology|$label" "$(/usr/bin/env python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["workersRoundMs"])' "$json")" "$l" "$json"
        else
          echo "the Dapr job ($topology, N=$n, $label) failed; see ${json%.json}.log" >&2
          record "$pass" "$n" "dapr $topology|$label" failed "$l" "$json"
        fi
      done
    done
  done
done

echo "Run of $started on $(nproc) cores; at the start: $start_load; finished: $(uptime)."
echo "Results and logs: $out"
[ -z "$ddp_skipped" ] || echo "$ddp_skipped."
echo
/usr/bin/env python3 - "$results" "$baselines" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
baselines = sys.argv[2] == "1"
def fmt(ms): return "-" if ms is None else f"{ms:.1f}"
def key(r): return (r["n"], r["pass"])
print("| N | pass | measurement | ms a round (load average at its start) | / DDP | / embedded |")
print("| ---: | ---: | --- | ---: | ---: | ---: |")
for n, p in sorted({key(r) for r in rows}):
    here = [r for r in rows if key(r) == (n, p)]
    ddp = next((r["ms"] for r in here if r["what"] == "ddp"), None)
    embedded = next((r["ms"] for r in here if r["what"] == "embedded"), None)
    for r in here:
        what = r["what"].replace("|", ", ") if r["what"].startswith("dapr") else {"ddp": "PyTorch DDP (gloo, 1 thread each)", "embedded": "embedded p2p"}[r["what"]]
        what = what.replace("dapr ", "Dapr over the double: ").replace(", defaults", "")
        shown = fmt(r["ms"]) if r["ms"] is not None else r["note"]
        def ratio(base, own):
            return "-" if r["ms"] is None or base is None or r["what"] in own else f"{r['ms'] / base:.2f}x"
        print(f"| {n} | {p} | {what} | {shown} ({r['load']}) | {ratio(ddp, ['ddp'])} | {ratio(embedded, ['ddp', 'embedded'])} |")
dapr = [r for r in rows if r["what"].startswith("dapr") and r["ms"] is not None]
if dapr:
    print()
    print("Dapr jobs, ms a round by phase (workers' mean; ps: the server after the slash):")
    print()
    phases = ["compute", "encode", "publish", "wait", "aggregate", "apply", "coordinator", "checkpoint", "other"]
    print("| N | pass | job | " + " | ".join(phases) + " | round |")
    print("| ---: | ---: | --- | " + " | ".join("---:" for _ in phases) + " | ---: |")
    for r in sorted(dapr, key=lambda r: (r["n"], r["pass"])):
        j = json.load(open(r["file"]))
        def cell(phase):
            w = j["workersPhases"].get(phase)
            s = j["serverPhases"].get(phase) if j.get("serverPhases") else None
            text = "-" if w is None else f"{w:.1f}"
            return text + (f" / {s:.1f}" if s is not None else "")
        total = f"{j['workersRoundMs']:.1f}" + (f" / {j['serverRoundMs']:.1f}" if j.get("serverRoundMs") is not None else "")
        print(f"| {r['n']} | {r['pass']} | {r['what'].replace('dapr ', '').replace('|', ', ')} | " + " | ".join(cell(p) for p in phases) + f" | {total} |")
    print()
    print("Dapr jobs, CPU ms a round by process (user + system; the sidecar doubles all run in the test process), and how much of the cores' time they fill:")
    print()
    print("| N | pass | job | workers (each, mean) | coordinator | parameter server | sidecar doubles | all | of cores x round |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in sorted(dapr, key=lambda r: (r["n"], r["pass"])):
        j = json.load(open(r["file"]))
        cpu = j.get("cpuMsPerRound") or {}
        cores = j.get("cores")
        workers = [v for k, v in cpu.items() if k.startswith("worker-")]
        doubles = next((v for k, v in cpu.items() if k.startswith("the sidecar doubles")), None)
        total = sum(cpu.values()) if cpu else None
        share = "-" if total is None or not cores else f"{100 * total / (cores * r['ms']):.0f}%"
        print(f"| {r['n']} | {r['pass']} | {r['what'].replace('dapr ', '').replace('|', ', ')} | {fmt(sum(workers) / len(workers) if workers else None)} | "
              f"{fmt(cpu.get('coordinator'))} | {fmt(cpu.get('parameter-server'))} | {fmt(doubles)} | {fmt(total)} | {share} |")
PY
