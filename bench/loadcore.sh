#!/usr/bin/env bash
# bench/loadcore.sh -- where the load generator's core goes, graceful_http beside Go.
#
#   bash bench/loadcore.sh        (after bench/run.sh has built build/bench/)
#
# With a new connection per request (wrk -c16, Connection: close; server
# on CPU 0, wrk on CPU 1, as in run.sh), wrk's core is the bottleneck for
# every server. This samples that core (perf record -g -C 1, 3 s) and
# sorts the samples by wrk's system call, and counts those in which the
# kernel, on wrk's core, was waking a server thread (sock_def_readable on
# the server's socket, tcp_child_process handing a connection to a
# sleeping acceptor): the one part of wrk's core a server's design
# changes. The rest -- both ends' TCP work, which on loopback runs on the
# sending core, and wrk itself -- is the same whichever server answers.
# Needs perf and python3; about 30 s.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/build/bench"
[ -x "$out/go_peer" ] || { echo "loadcore.sh: run bench/run.sh first (missing $out/go_peer)" >&2; exit 1; }
command -v perf >/dev/null || { echo "loadcore.sh: needs perf" >&2; exit 1; }
make -s -C "$repo" examples >&2 || exit 1
ulimit -n 65536 2>/dev/null
. "$repo/bench/pinned.sh"

# measure NAME BIN
measure() {
  local name=$1 bin=$2
  local pid port
  start_pinned "$out/loadcore.$name.out" "$bin"
  pid=$PINNED_PID port=$PINNED_PORT
  local url="http://127.0.0.1:$port/"
  setsid taskset -c 1 wrk -t1 -c16 -d1s -H 'Connection: close' "$url" > /dev/null
  setsid taskset -c 1 wrk -t1 -c16 -d5s -H 'Connection: close' "$url" > "$out/loadcore.wrk" &
  local w=$!
  sleep 1
  perf record -q -g -C 1 -o "$out/loadcore.$name.data" -- sleep 3 > /dev/null 2>&1
  wait $w
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
  local rps
  rps=$(awk '/Requests\/sec/ {print $2}' "$out/loadcore.wrk")
  perf script -i "$out/loadcore.$name.data" 2> /dev/null | python3 -c '
import re, sys
name, rps = sys.argv[1], float(sys.argv[2])
samples, cur = [], set()
for line in sys.stdin:
    if not line.strip():
        if cur: samples.append(cur)
        cur = set()
    elif line[0] in " \t":
        parts = line.split()
        if len(parts) >= 2: cur.add(re.sub(r"\+0x.*", "", parts[1]))
if cur: samples.append(cur)
n = len(samples) or 1
def share(pred): return 100.0 * sum(1 for s in samples if pred(s)) / n
calls = [("connect", "__sys_connect"), ("close", "__x64_sys_close"), ("write", "ksys_write"),
         ("read", "ksys_read"), ("epoll_ctl", "do_epoll_ctl"), ("socket", "__sys_socket")]
row = " ".join("%s %4.1f%%" % (c, share(lambda s, f=f: f in s)) for c, f in calls)
wake = share(lambda s: "sock_def_readable" in s or "tcp_child_process" in s)
print("%-14s %7.0f req/s | %s | waking server threads %4.1f%%" % (name, rps, row, wake))
' "$name" "$rps"
}

echo "wrk's core (CPU 1), new connection per request, $(date -u '+%Y-%m-%d %H:%M UTC')"
measure graceful_http "$repo/build/examples/demo_server"
measure go "$out/go_peer"
