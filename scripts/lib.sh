# Shell helpers shared by scripts/failure-demo.sh and scripts/bench.sh.
# Source it after defining die (MESSAGE...), which reports and exits.

# until_ok SECONDS WHAT CMD...: run CMD every 0.2 s until it succeeds, or
# die naming WHAT after SECONDS. CMD is run afresh each time, so pass a
# function or a command, never a $(...) that would be evaluated once.
until_ok() {
  local max=$1 what=$2; shift 2
  local deadline=$((SECONDS + max))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${max}s waiting for $what"
    sleep 0.2
  done
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null && return
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# mounted DIR: DIR is a mountpoint.
mounted() { grep -qs " $1 " /proc/mounts; }

# live N: exactly N chunkservers are live (needs $shoal and SHOAL_MANAGER).
live() { [ "$("$shoal" status | awk '$4 == "live"' | wc -l)" -eq "$1" ]; }
