#!/usr/bin/env bash
# Runs a chunkserver in the foreground. MANAGER is required; PORT, ADVERTISE,
# DATA, RACK and CAPACITY override.
set -euo pipefail
shoal=${SHOAL:-$(dirname "$0")/../../bin/shoal}
: "${MANAGER:?set MANAGER=host:port of the manager}"
port=${PORT:-9500}
args=(chunkserver --manager "$MANAGER" --listen "0.0.0.0:$port" --data "${DATA:-./data/cs$port}")
args+=(--advertise "${ADVERTISE:-127.0.0.1:$port}")
[ -n "${RACK:-}" ] && args+=(--rack "$RACK")
[ -n "${CAPACITY:-}" ] && args+=(--capacity "$CAPACITY")
exec "$shoal" "${args[@]}" "$@"
