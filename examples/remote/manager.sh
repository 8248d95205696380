#!/usr/bin/env bash
# Runs a manager in the foreground. LISTEN, DATA, REPLICATION override.
set -euo pipefail
shoal=${SHOAL:-$(dirname "$0")/../../bin/shoal}
exec "$shoal" manager --listen "${LISTEN:-0.0.0.0:9400}" --http "${HTTP:-127.0.0.1:9401}" \
  --data "${DATA:-./data/manager}" --replication "${REPLICATION:-3}" "$@"
