#!/usr/bin/env bash
# The tests, all of them: the .NET solution (unit, contract and end-to-end tests), then the dashboard's (TypeScript:
# reducers, the schema contract, its server's Dapr routes, and a browser test in Debian's chromium). The dashboard's
# tests replay a real embedded run of the CLI that the first step builds. Arguments go to `dotnet test`.
set -uo pipefail
cd "$(dirname "$0")"

dotnet test DaprTrain.sln -c Release "$@"
dotnet_status=$?

dashboard_status=0
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  # npm ci restores exactly package-lock.json; the build bundles the page (esbuild) and type-checks.
  ( cd services/dashboard && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build && npm test )
  dashboard_status=$?
  [ "$dashboard_status" -ne 0 ] && echo "dashboard: the tests, or npm ci / the build before them, failed (exit $dashboard_status)"
else
  echo "dashboard: 0 passed, 1 failed (Node.js 20 and npm are needed for the dashboard's tests: node not found)"
  dashboard_status=1
fi

[ "$dotnet_status" -eq 0 ] && [ "$dashboard_status" -eq 0 ]
