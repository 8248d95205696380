#!/usr/bin/env bash
# The failure demo with real daemons: a manager and four chunkservers as
# separate processes, a FUSE mount, a file copied in with cp, a chunkserver
# holding replicas killed with kill -9, the healer restoring replication,
# the file read back and checked, the killed node restarted and its extra
# replicas trimmed.
#
# Usage: scripts/failure-demo.sh            (needs root or fusermount3)
#   SIZE_MIB=256   size of the file copied in
#   CHUNK_SIZE=64MiB  the manager's chunk size
#   SHOAL=path     a shoal binary to use instead of building one
#   KEEP=1         leave the work directory behind
# Exits non-zero if any step fails; stops everything it started, always.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-256}
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-failure-demo.XXXXXX")
mnt="$work/mnt"
pids=()
mount_pid=

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }
. "$top/scripts/lib.sh"

cleanup() {
  local rc=$?
  set +e
  if [ -n "$mount_pid" ] && kill -0 "$mount_pid" 2>/dev/null; then
    kill -TERM "$mount_pid"; wait "$mount_pid" 2>/dev/null
  fi
  if grep -qs " $mnt " /proc/mounts; then
    fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  if [ "$rc" -ne 0 ]; then
    echo "--- daemon logs (last lines) ---" >&2
    tail -n 15 "$work"/*.log >&2 2>/dev/null
  fi
  [ -n "${KEEP:-}" ] && echo "work directory kept: $work" || rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM



if [ -n "${SHOAL:-}" ]; then
  shoal=$SHOAL
else
  step "building shoal"
  (cd "$top" && go build -o "$work/shoal" ./cmd/shoal)
  shoal="$work/shoal"
fi

export SHOAL_MANAGER="127.0.0.1:$(free_port)"

step "starting the manager on $SHOAL_MANAGER (replication 3, dead after 5s)"
"$shoal" manager --data "$work/manager" --listen "$SHOAL_MANAGER" --http "" --dead-after 5s \
  --chunk-size "${CHUNK_SIZE:-64MiB}" >"$work/manager.log" 2>&1 &
pids+=($!)
until_ok 20 "the manager" "$shoal" status --op-timeout 1s

cs_pid=(); cs_addr=()
for i in 0 1 2 3; do
  addr="127.0.0.1:$(free_port)"
  "$shoal" chunkserver --data "$work/cs$i" --listen "$addr" >"$work/cs$i.log" 2>&1 &
  pids+=($!); cs_pid[$i]=$!; cs_addr[$i]=$addr
  echo "chunkserver $i: pid ${cs_pid[$i]} on $addr"
done
until_ok 30 "4 live chunkservers" live 4
"$shoal" status

step "mounting at $mnt"
mkdir -p "$mnt"
"$shoal" mount "$mnt" >"$work/mount.log" 2>&1 &
mount_pid=$!
until_ok 20 "the mount" grep -qs " $mnt " /proc/mounts

step "copying a ${SIZE_MIB} MiB file in with cp"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$work/file.bin"
want=$(sha256sum <"$work/file.bin" | cut -d' ' -f1)
time cp "$work/file.bin" "$mnt/file.bin"
ls -l "$mnt"
"$shoal" fsck || die "fsck unhealthy right after the copy"

# The chunkserver holding the most replicas is the one to kill.
victim=$("$shoal" status | awk 'NR > 1 && $4 == "live" { print $5, $2 }' | sort -rn | head -1 | cut -d' ' -f2)
for i in 0 1 2 3; do [ "${cs_addr[$i]}" = "$victim" ] && v=$i; done
[ -n "${v:-}" ] || die "could not find the chunkserver at $victim"
step "kill -9 chunkserver $v ($victim, pid ${cs_pid[$v]}), which holds replicas"
"$shoal" status
kill -9 "${cs_pid[$v]}"
wait "${cs_pid[$v]}" 2>/dev/null || true
killed_at=$SECONDS

step "reading the file while the node is down (reads fail over at once)"
got=$(sha256sum <"$mnt/file.bin" | cut -d' ' -f1)
[ "$got" = "$want" ] || die "sha256 mismatch while a node was down: $got != $want"
echo "sha256 ok: $got"

step "waiting for the manager to declare it dead"
is_dead() { "$shoal" status | awk -v a="$1" '$2 == a && $4 == "dead" { found = 1 } END { exit !found }'; }
until_ok 30 "the node to be declared dead" is_dead "$victim"
"$shoal" status

step "waiting for the healer to restore 3 replicas of every chunk"
until_ok 120 "a healthy fsck" "$shoal" fsck
"$shoal" fsck
"$shoal" status
echo "healed $((SECONDS - killed_at))s after the kill"

step "reading the file back (caches dropped) and checking its sha256"
sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
got=$(sha256sum <"$mnt/file.bin" | cut -d' ' -f1)
[ "$got" = "$want" ] || die "sha256 mismatch after healing: $got != $want"
got=$("$shoal" cat /file.bin | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || die "sha256 mismatch from shoal cat: $got != $want"
echo "sha256 ok: $got"

step "restarting chunkserver $v: its replicas are now extra and get trimmed"
"$shoal" chunkserver --data "$work/cs$v" --listen "$victim" >>"$work/cs$v.log" 2>&1 &
pids+=($!); cs_pid[$v]=$!
until_ok 30 "4 live chunkservers" live 4
# Its full report at registration makes those chunks over-replicated, so
# fsck (which counts over-replication as unhealthy) passes once trimmed.
"$shoal" fsck || true
until_ok 60 "the extra replicas to be trimmed" "$shoal" fsck
"$shoal" status
"$shoal" fsck

step "unmounting and stopping every daemon"
kill -TERM "$mount_pid"; wait "$mount_pid" || die "shoal mount did not exit cleanly"
mount_pid=
echo "failure demo passed: no byte lost"
