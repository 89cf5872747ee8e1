#!/usr/bin/env sh
# Starts dapr.yaml with this run's secrets: an app API token (daprd presents it to the apps, which refuse everything
# without it) and the job's secret (workers and the parameter server prove it to the coordinator). daprd reads
# APP_API_TOKEN only from the environment `dapr run` starts in, so it is exported here rather than written in dapr.yaml.
# Set them yourself beforehand to reuse values across runs.
set -eu
cd "$(dirname "$0")"
random() { head -c 30 /dev/urandom | base64 | tr -d '/+=\n'; }
export APP_API_TOKEN="${APP_API_TOKEN:-$(random)}"
export JOB__SECRET="${JOB__SECRET:-$(random)}"
exec dapr run -f dapr.yaml "$@"
