#!/usr/bin/env bash
# Builds the targets, instruments the DaprTrain assemblies for AFL++ with SharpFuzz, and fuzzes one target.
#   tests/DaprTrain.Fuzz/fuzz.sh <target> [seconds]     (no seconds: until Ctrl-C)
# Needs afl-fuzz (apt-get install afl++) and the sharpfuzz tool (dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0).
# Findings land in $FUZZ_OUT/<target> (default /tmp/daprtrain-fuzz/findings/<target>): crashes/, hangs/, queue/, fuzzer_stats.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="${1:?usage: fuzz.sh <target> [seconds]}"
seconds="${2:-}"
work="${FUZZ_WORK:-/tmp/daprtrain-fuzz}"
out="${FUZZ_OUT:-$work/findings}/$target"
bin="$work/bin"
export PATH="$PATH:$HOME/.dotnet/tools"

if [[ "${FUZZ_SKIP_BUILD:-0}" != 1 ]]; then
  rm -rf "$bin"
  dotnet publish "$here/DaprTrain.Fuzz.csproj" -c Release -o "$bin" --nologo -v quiet
  # Instrument only the assemblies whose parsers are fuzzed (SharpFuzz rewrites them in place).
  for assembly in DaprTrain.Engine DaprTrain.Dapr DaprTrain.Training DaprTrain.Simulation DaprTrain.Serving; do
    sharpfuzz "$bin/$assembly.dll"
  done
fi

mkdir -p "$(dirname "$out")"
rm -rf "$out" "$work/seeds/$target"
# The seeds, without the finding-* inputs (each reproduces a finding, and afl-fuzz refuses seeds that crash).
mkdir -p "$work/seeds/$target"
find "$here/corpus/$target" -maxdepth 1 -type f ! -name 'finding-*' -exec cp {} "$work/seeds/$target/" \;
export AFL_SKIP_BIN_CHECK=1                 # dotnet itself is not instrumented; the rewritten assemblies are
export AFL_SKIP_CPUFREQ=1
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_UI=1
export DOTNET_TieredPGO=0
duration=()
[[ -n "$seconds" ]] && duration=(-V "$seconds")
# -t: .NET start-up and JIT make the first executions slow; -m none: the CLR reserves far more address space than it uses.
afl-fuzz -i "$work/seeds/$target" -o "$out" -t 5000 -m none "${duration[@]}" -- dotnet "$bin/DaprTrain.Fuzz.dll" "$target"
