#!/usr/bin/env bash
# The benchmark suite (make bench). It runs the same workloads on three
# targets in one run:
#   local     a plain directory on the local disk
#   loopback  a go-fuse loopback mount of a local directory (the ceiling:
#             go-fuse's defaults, FUSE passthrough off)
#   shoal     a shoal mount of real daemons: a manager and 3 chunkservers,
#             replication 3, on 127.0.0.1
# and prints a table of each figure and its ratio to the loopback figure,
# written into docs/BENCHMARKS.md between the bench markers.
#
# Needs root (or fusermount3) for the mounts, and fio for the fio rows
# (apt-get install fio; without it those rows say so).
#   SIZE_MIB=1024   size of the cp / fio sequential files
#   FILES=10000     small files in the untar workload
#   META_FILES=1000000  files in the manager scale run (0 skips it)
#   WORK=dir        where to put data (default: a temp dir under /var/tmp)
#   NO_DOC=1        print the table without touching docs/BENCHMARKS.md
#   TARGETS="local loopback shoal"  the targets to run (ratios need loopback)
#   RAND_SECS=10    length of each fio random-I/O run
#   WRITE_BUFFER_MIB=256  the mount's --write-buffer
#   PPROF=1         give the manager, the chunkservers and the mount an
#                   --http endpoint (/debug/pprof/) and print the addresses
#   KEEP=1          keep the work directory (data, logs) at the end
# On a failure the tail of every daemon's log is printed.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-1024}
FILES=${FILES:-10000}
META_FILES=${META_FILES:-1000000}
RAND_SECS=${RAND_SECS:-10}
WRITE_BUFFER_MIB=${WRITE_BUFFER_MIB:-256}
read -r -a targets <<<"${TARGETS:-local loopback shoal}"
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${WORK:-/var/tmp}/shoal-bench.XXXXXX")
pids=()
mounts=()
rss_pids=()

log() { printf '%s  %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
. "$top/scripts/lib.sh"

cleanup() {
  local rc=$?
  set +e
  for m in "${mounts[@]}"; do
    fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  if [ "$rc" -ne 0 ]; then
    for l in "$work"/*.log; do
      [ -s "$l" ] || continue
      printf '\n--- %s (last 15 lines)\n' "$(basename "$l")" >&2
      tail -n 15 "$l" >&2
    done
  fi
  if [ -n "${KEEP:-}" ]; then log "kept $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


now() { date +%s.%N; }
# rate N START END: N per second between two `now` stamps.
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", n / (b - a) }'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
# http_flag NAME: an --http flag on a free port when PPROF is set.
http_flag() {
  [ -n "${PPROF:-}" ] || { echo "--http="; return; }
  local a="127.0.0.1:$(free_port)"
  log "pprof: $1 at http://$a/debug/pprof/"
  echo "--http=$a"
}

log "building shoal and the loopback ceiling"
(cd "$top" && go build -o "$work/shoal" ./cmd/shoal && go build -o "$work/loopback" ./scripts/loopback)
shoal=$work/shoal

# --- targets ---------------------------------------------------------------
mkdir -p "$work/local" "$work/loop-src" "$work/loop" "$work/shoal-mnt"

"$work/loopback" "$work/loop-src" "$work/loop" >"$work/loopback.log" 2>&1 &
pids+=($!); mounts+=("$work/loop")
until_ok 20 "the loopback mount" mounted "$work/loop"

export SHOAL_MANAGER="127.0.0.1:$(free_port)"
"$shoal" manager --data "$work/manager" --listen "$SHOAL_MANAGER" "$(http_flag manager)" --log-level warn >"$work/manager.log" 2>&1 &
manager_pid=$!; pids+=($!)
until_ok 20 "the manager" "$shoal" status --op-timeout 1s
cs_pids=()
for i in 0 1 2; do
  "$shoal" chunkserver --data "$work/cs$i" --listen "127.0.0.1:$(free_port)" "$(http_flag "chunkserver $i")" --log-level warn >"$work/cs$i.log" 2>&1 &
  pids+=($!); cs_pids+=($!)
done
until_ok 30 "3 live chunkservers" live 3
"$shoal" mount "$(http_flag mount)" --write-buffer "${WRITE_BUFFER_MIB}MiB" "$work/shoal-mnt" >"$work/mount.log" 2>&1 &
mount_pid=$!; pids+=($!); mounts+=("$work/shoal-mnt")
until_ok 20 "the shoal mount" mounted "$work/shoal-mnt"

# hwm PID: peak resident memory (VmHWM) in MiB.
hwm() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
cp_rss=n/a

declare -A dir=([local]="$work/local" [loopback]="$work/loop" [shoal]="$work/shoal-mnt")
declare -A result   # result[workload,target]
rows=()             # workload names in order
units=()

record() { # record WORKLOAD UNIT TARGET VALUE
  local w=$1 u=$2 t=$3 v=$4
  if [ -z "${result[$w,local]+x}${result[$w,loopback]+x}${result[$w,shoal]+x}" ]; then rows+=("$w"); units+=("$u"); fi
  result[$w,$t]=$v
  log "$w on $t: $v $u"
}

# --- data ------------------------------------------------------------------
log "generating ${SIZE_MIB} MiB of random data and a tarball of $FILES files"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$work/big.bin"
mkdir -p "$work/tree"
per_dir=$(( (FILES + 99) / 100 ))
head -c 4096 /dev/urandom >"$work/4k"
for d in $(seq 0 99); do
  mkdir -p "$work/tree/d$d"
  for f in $(seq 0 $((per_dir - 1))); do
    [ $((d * per_dir + f)) -lt "$FILES" ] || break
    cp "$work/4k" "$work/tree/d$d/f$f"
  done
done
tar -C "$work/tree" -cf "$work/tree.tar" .
rm -rf "$work/tree"

have_fio=1
command -v fio >/dev/null || { have_fio=0; log "fio is not installed (apt-get install fio): the fio rows are skipped"; }

# fio_run TARGET NAME RW BS SIZE_MIB [extra...]: prints "bw_KiB iops" of the job.
fio_run() {
  local t=$1 name=$2 rw=$3 bs=$4 size=$5; shift 5
  local out
  out=$(fio --minimal --name="$name" --directory="${dir[$t]}" --filename="fio-$name" --rw="$rw" --bs="$bs" \
    --size="${size}M" --ioengine=psync --numjobs=1 "$@")
  # terse v3: field 7/8 read bandwidth (KiB/s)/IOPS, 48/49 write.
  case $rw in
    *read*) echo "$out" | awk -F';' '{ print $7, $8 }' ;;
    *)      echo "$out" | awk -F';' '{ print $48, $49 }' ;;
  esac
}

mbps() { awk -v k="$1" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }'; }

for t in "${targets[@]}"; do
  d=${dir[$t]}
  log "=== $t ($d)"

  # cp in: the time includes close (cp closes before it exits). The
  # mount's peak RSS is taken over the copy alone (clear_refs 5 resets
  # VmHWM).
  if [ "$t" = shoal ]; then echo 5 >"/proc/$mount_pid/clear_refs"; fi
  a=$(now); cp "$work/big.bin" "$d/big.bin"; b=$(now)
  if [ "$t" = shoal ]; then cp_rss=$(hwm "$mount_pid"); fi
  record "cp ${SIZE_MIB} MiB in" MB/s "$t" "$(rate $((SIZE_MIB * 1048576 / 1000000)) "$a" "$b")"
  drop_caches
  a=$(now); cat "$d/big.bin" >/dev/null; b=$(now)
  record "cat ${SIZE_MIB} MiB out, cold" MB/s "$t" "$(rate $((SIZE_MIB * 1048576 / 1000000)) "$a" "$b")"
  cmp "$work/big.bin" "$d/big.bin" || die "$t: the file read back differs from the one copied in"
  rm -f "$d/big.bin"

  if [ $have_fio = 1 ]; then
    read -r bw _ < <(fio_run "$t" seq write 1M "$SIZE_MIB" --end_fsync=1)
    record "fio seq write 1M" MB/s "$t" "$(mbps "$bw")"
    drop_caches
    read -r bw _ < <(fio_run "$t" seq read 1M "$SIZE_MIB")
    record "fio seq read 1M" MB/s "$t" "$(mbps "$bw")"
    rm -f "$d/fio-seq"
    fio_run "$t" rand write 1M 512 --end_fsync=1 >/dev/null   # lay the file out
    drop_caches
    read -r _ iops < <(fio_run "$t" rand randread 4k 512 --runtime="$RAND_SECS" --time_based)
    record "fio 4K random read" IOPS "$t" "$iops"
    read -r _ iops < <(fio_run "$t" rand randwrite 4k 512 --runtime="$RAND_SECS" --time_based --end_fsync=1)
    record "fio 4K random write" IOPS "$t" "$iops"
    rm -f "$d/fio-rand"
  fi

  mkdir -p "$d/tree"
  a=$(now); tar -C "$d/tree" -xf "$work/tree.tar"; sync -f "$d/tree" 2>/dev/null || true; b=$(now)
  record "untar $FILES x 4 KiB" files/s "$t" "$(rate "$FILES" "$a" "$b")"
  drop_caches
  entries=$((FILES + 101))
  a=$(now); ls -lR "$d/tree" >/dev/null; b=$(now)
  record "ls -lR" entries/s "$t" "$(rate "$entries" "$a" "$b")"
  drop_caches
  a=$(now); find "$d/tree" -type f -exec cat {} + >/dev/null; b=$(now)
  record "cat $FILES files" files/s "$t" "$(rate "$FILES" "$a" "$b")"
  n=$(find "$d/tree" -type f | wc -l)
  [ "$n" -eq "$FILES" ] || die "$t: $n files after untar, want $FILES"
  a=$(now); rm -rf "$d/tree"; b=$(now)
  record "rm -rf $FILES files" files/s "$t" "$(rate "$FILES" "$a" "$b")"

  per=$((SIZE_MIB / 4))
  a=$(now)
  dd_pids=()
  for w in 1 2 3 4; do
    dd if="$work/big.bin" of="$d/par$w" bs=1M count="$per" conv=fsync status=none &
    dd_pids+=($!)
  done
  wait_ok=1
  for j in "${dd_pids[@]}"; do wait "$j" || wait_ok=0; done
  b=$(now)
  [ $wait_ok = 1 ] || die "$t: a parallel writer failed"
  record "4 parallel writers" MB/s "$t" "$(rate $((per * 4 * 1048576 / 1000000)) "$a" "$b")"
  rm -f "$d"/par*
done

# The mount reads replicas of this host's chunkservers from their files
# (short-circuit reads). The same sequential read through a second mount
# with --local-reads=false shows the network path, against the same
# loopback figure.
if [ $have_fio = 1 ] && [ -n "${result[fio seq read 1M,shoal]+x}" ]; then
  w="fio seq read 1M, over TCP (--local-reads=false)"
  mkdir -p "$work/shoal-tcp"
  "$shoal" mount --local-reads=false --write-buffer "${WRITE_BUFFER_MIB}MiB" "$work/shoal-tcp" >"$work/mount-tcp.log" 2>&1 &
  tcp_pid=$!; pids+=($!); mounts+=("$work/shoal-tcp")
  until_ok 20 "the second shoal mount" mounted "$work/shoal-tcp"
  dir[shoal]=$work/shoal-tcp
  fio_run shoal seq write 1M "$SIZE_MIB" --end_fsync=1 >/dev/null
  drop_caches
  read -r bw _ < <(fio_run shoal seq read 1M "$SIZE_MIB")
  rm -f "$work/shoal-tcp/fio-seq"
  dir[shoal]=$work/shoal-mnt
  record "$w" MB/s shoal "$(mbps "$bw")"
  result[$w,loopback]=${result[fio seq read 1M,loopback]:-n/a}   # the same ceiling
  umount "$work/shoal-tcp" 2>/dev/null || fusermount3 -u "$work/shoal-tcp"
  wait "$tcp_pid" || true
fi

# Peak memory (VmHWM) of the daemons, over the whole run.
mount_rss=$(hwm "$mount_pid"); manager_rss=$(hwm "$manager_pid"); cs_rss=$(hwm "${cs_pids[0]}")
log "peak RSS: mount ${mount_rss} MiB, manager ${manager_rss} MiB, chunkserver ${cs_rss} MiB"

meta_line=""
if [ "$META_FILES" -gt 0 ]; then
  log "manager scale: $META_FILES files through the client API"
  meta_line=$(cd "$top" && go run ./scripts/metabench --manager "$SHOAL_MANAGER" --files "$META_FILES" --manager-pid "$manager_pid" --data "$work/manager")
  log "$meta_line"
fi

# --- the table -------------------------------------------------------------
table=$(
  echo "| workload | unit | local disk | go-fuse loopback | shoal | shoal / loopback |"
  echo "|---|---|---:|---:|---:|---:|"
  for i in "${!rows[@]}"; do
    w=${rows[$i]}
    l=${result[$w,local]:-n/a}; p=${result[$w,loopback]:-n/a}; s=${result[$w,shoal]:-n/a}
    ratio=$(awk -v s="$s" -v p="$p" 'BEGIN { if (p + 0 > 0 && s != "n/a") printf "%.2f", s / p; else print "n/a" }')
    echo "| $w | ${units[$i]} | $l | $p | $s | $ratio |"
  done
  echo
  echo "Peak RSS of \`shoal mount\` while copying ${SIZE_MIB} MiB in: ${cp_rss} MiB (its write buffer: ${WRITE_BUFFER_MIB} MiB)."
  echo "Peak RSS over the run: \`shoal mount\` ${mount_rss} MiB, manager ${manager_rss} MiB, one chunkserver ${cs_rss} MiB."
  if [ -n "$meta_line" ]; then echo; echo "Manager scale: $meta_line"; fi
)

commit=$(cd "$top" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
header="Run $(date -u +'%Y-%m-%d %H:%M UTC'), commit $commit, $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB memory, $(uname -r); \`make bench\` (SIZE_MIB=$SIZE_MIB FILES=$FILES META_FILES=$META_FILES)."
printf '\n%s\n\n%s\n' "$header" "$table"

if [ -z "${NO_DOC:-}" ]; then
  doc="$top/docs/BENCHMARKS.md"
  [ -f "$doc" ] || printf '# Benchmarks\n\n<!-- bench:begin -->\n<!-- bench:end -->\n' >"$doc"
  BODY="$header"$'\n\n'"$table" awk '
    /<!-- bench:begin -->/ { print; print ENVIRON["BODY"]; skip = 1; next }
    /<!-- bench:end -->/ { skip = 0 }
    !skip { print }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
  log "wrote the table into docs/BENCHMARKS.md"
fi
