#!/usr/bin/env bash
# Mounts the cluster at $1 in the foreground. MANAGER is required.
set -euo pipefail
shoal=${SHOAL:-$(dirname "$0")/../../bin/shoal}
: "${MANAGER:?set MANAGER=host:port of the manager}"
mnt=${1:?usage: mount.sh MOUNTPOINT}
mkdir -p "$mnt"
exec "$shoal" mount --manager "$MANAGER" "$mnt"
