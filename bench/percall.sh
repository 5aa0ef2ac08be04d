#!/usr/bin/env bash
# bench/percall.sh -- kernel events per request, graceful_http beside Go.
#
#   bash bench/percall.sh        (after bench/run.sh has built build/bench/)
#
# For keep-alive GET / (wrk -c64) and a new connection per request (wrk
# -c16, Connection: close): each server pinned to CPU 0 and wrk to CPU 1
# (as in run.sh), then, during 3 s of load, perf counts on CPU 0 (all
# processes, so the kernel's work for the server counts too) the system
# calls made there, context switches and wake-ups. Everything is printed
# per request. Needs perf with
# tracepoints (Debian's linux-perf); about 1 minute.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/build/bench"
for t in go_peer; do
  [ -x "$out/$t" ] || { echo "percall.sh: run bench/run.sh first (missing $out/$t)" >&2; exit 1; }
done
command -v perf >/dev/null || { echo "percall.sh: needs perf" >&2; exit 1; }
make -s -C "$repo" examples >&2 || exit 1
ulimit -n 65536 2>/dev/null
. "$repo/bench/pinned.sh"

EVENTS="syscalls:sys_enter_poll,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendmsg"
EVENTS="$EVENTS,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_accept4"
EVENTS="$EVENTS,syscalls:sys_enter_futex,syscalls:sys_enter_sched_yield,syscalls:sys_enter_epoll_pwait"
EVENTS="$EVENTS,syscalls:sys_enter_clone3,sched:sched_switch,sched:sched_wakeup"

# measure NAME BIN CONNS [WRK_ARGS...]
measure() {
  local name=$1 bin=$2 conns=$3; shift 3
  local pid port
  start_pinned "$out/percall.$name.out" "$bin"
  pid=$PINNED_PID port=$PINNED_PORT
  setsid taskset -c 1 wrk -t1 -c"$conns" -d1s "$@" "http://127.0.0.1:$port/" > /dev/null
  setsid taskset -c 1 wrk -t1 -c"$conns" -d5s "$@" "http://127.0.0.1:$port/" > "$out/percall.wrk" &
  local w=$!
  sleep 1
  perf stat -x, -e "$EVENTS" -a -C 0 -- sleep 3 2> "$out/percall.ev" > /dev/null
  wait $w
  local rps
  rps=$(awk '/Requests\/sec/ {print $2}' "$out/percall.wrk")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
  awk -F, -v name="$name" -v rps="$rps" '
    { n[$3] = $1 }
    END {
      reqs = rps * 3
      printf "%-28s %9.0f req/s |", name, rps
      split("poll recvfrom sendmsg read write accept4 futex sched_yield epoll_pwait clone3", s, " ")
      for (i = 1; i <= 10; i++) {
        v = n["syscalls:sys_enter_" s[i]] / reqs
        if (v >= 0.005) printf " %s %.2f", s[i], v
      }
      printf " | switches %.2f wakeups %.2f\n", n["sched:sched_switch"] / reqs, n["sched:sched_wakeup"] / reqs
    }' "$out/percall.ev"
}

echo "per request, on the server's CPU (CPU 0), $(date -u '+%Y-%m-%d %H:%M UTC')"
measure "graceful_http keep-alive" "$repo/build/examples/demo_server" 64
measure "go keep-alive" "$out/go_peer" 64
measure "graceful_http new conn" "$repo/build/examples/demo_server" 16 -H "Connection: close"
measure "go new conn" "$out/go_peer" 16 -H "Connection: close"
