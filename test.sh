#!/usr/bin/env bash
# The tests, all of them: the dashboard's build (npm ci and the bundle: the .NET end-to-end suite starts the dashboard as
# one more Dapr app), the .NET solution's tests (unit, contract and end-to-end), then the dashboard's own (reducers, the
# schema contract, its server's Dapr routes, a browser test in Debian's chromium replaying a real embedded run of the
# CLI the .NET step built). Arguments go to `dotnet test`.
set -uo pipefail
cd "$(dirname "$0")"

dashboard_built=0
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  # npm ci restores exactly package-lock.json; the build type-checks and bundles the page (esbuild).
  if ( cd services/dashboard && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build ); then dashboard_built=1; fi
else
  echo "note: Node.js 20 and npm are needed for the dashboard (node not found)"
fi

dotnet test DaprTrain.sln -c Release "$@"
dotnet_status=$?

if [ "$dashboard_built" -eq 1 ]; then
  ( cd services/dashboard && npm test )
  dashboard_status=$?
else
  echo "dashboard: 0 passed, 1 failed (the dashboard could not be installed or built; see above)"
  dashboard_status=1
fi

[ "$dotnet_status" -eq 0 ] && [ "$dashboard_status" -eq 0 ]
