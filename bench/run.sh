#!/usr/bin/env bash
# bench/run.sh -- graceful_http against Go net/http, cpp-httplib and nginx.
#
#   bash bench/run.sh            full run (~22 min): 10 s per wrk run, 3 rounds
#   bash bench/run.sh --smoke    short run (~2 min) for CI: 2 s per wrk run, 1 round
#   --nice N    autogroup nice (-20..19) for the servers and load generators;
#               default 0. On a machine shared with other work, -19 makes the
#               figures far less noisy (at the others' expense while it runs).
#
# Self-contained: installs what is missing (wrk, golang-go,
# libcpp-httplib-dev, nginx-light; needs root and Debian's apt), builds
# demo_server (make examples), the Go and cpp-httplib peers and the C++
# bench tools under build/bench/, then measures. Every server runs pinned
# to CPU 0 and every load generator to CPU 1 (taskset). Servers and load
# are interleaved round by round, so noise from other work on the machine
# hits all of them alike, and each round starts with a different server
# (in runs 4 and 5 of RESULTS.md the server measured first, right after
# the builds, had its slowest round in round 1 both times); a throughput
# figure is the best of the rounds
# (interference only slows a server down), every round listed below the table.
# Every server and load generator runs in its own session (setsid), hence
# its own scheduler autogroup: sharing the shell's autogroup with the load
# generator on the other CPU starves a server that blocks often (measured:
# a thread-per-connection server fell from 25k to 7k req/s that way).
# Only 127.0.0.1 is used. Every server is started by this script and
# stopped by its own pid. Prints one table at the end (also written to
# build/bench/table.md; every raw figure goes to build/bench/raw.txt).
# Last phase: bench/concurrency.sh (keep-alive at 64, 1,000 and 4,000
# connections, latency percentiles; its own table, build/bench/concurrency.md).
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/build/bench"
mode=full
NICE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) mode=smoke ;;
    --full) mode=full ;;
    --nice) NICE=${2:-0}; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$mode" = smoke ]; then
  DUR=2; ROUNDS=1; RSS_NS="500"; LAG_RUNS=10; LOAD_CYCLES=3
else
  DUR=10; ROUNDS=3; RSS_NS="2000 10000"; LAG_RUNS=100; LOAD_CYCLES=50
fi
DRAIN_MS=200 # drain delay for the shutdown-under-load scenario
SERVER_CPU=0
LOAD_CPU=1
[ "$(nproc)" -lt 2 ] && LOAD_CPU=0

LOADAVG0=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$out"
raw="$out/raw.txt"
: > "$raw"
log() { echo "$*" | tee -a "$raw" >&2; }
. "$repo/bench/procs.sh" # install_tools, on_cpu, real_pid, free_port, wait_listening, nginx_conf, start_nginx, stop_server

# ---- install what is missing ----
install_tools run.sh
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# ---- build ----
log "== building ($mode mode)"
make -s -C "$repo" examples >&2 || { echo "run.sh: make examples failed" >&2; exit 1; }
CXXF="-std=c++17 -O2 -pthread"
for t in idle_conns shutdown_lag shutdown_load kaclient; do
  if [ ! -x "$out/$t" ] || [ "$repo/bench/$t.cpp" -nt "$out/$t" ] || [ "$repo/bench/common.hpp" -nt "$out/$t" ] ||
     [ "$repo/graceful_http.hpp" -nt "$out/$t" ]; then
    g++ $CXXF -I"$repo" "$repo/bench/$t.cpp" -o "$out/$t" || { echo "run.sh: build $t failed" >&2; exit 1; }
  fi
done
if [ ! -x "$out/httplib_peer" ] || [ "$repo/bench/peers/httplib/main.cpp" -nt "$out/httplib_peer" ]; then
  # shellcheck disable=SC2046
  g++ $CXXF $(pkg-config --cflags cpp-httplib) "$repo/bench/peers/httplib/main.cpp" \
    -o "$out/httplib_peer" $(pkg-config --libs cpp-httplib) || { echo "run.sh: build httplib_peer failed" >&2; exit 1; }
fi
export GOCACHE="$out/gocache" GOPATH="$out/gopath" GO111MODULE=off GOPROXY=off GOFLAGS= GOTOOLCHAIN=local
(cd "$repo/bench/peers/go" && go build -o "$out/go_peer" .) || { echo "run.sh: build go_peer failed" >&2; exit 1; }
(cd "$repo/bench/peers/go-shutdown" && go build -o "$out/go_shutdown_lag" .) || { echo "run.sh: build go_shutdown_lag failed" >&2; exit 1; }

# Room for 10,000 connections on both sides.
ulimit -Hn 65536 2>/dev/null; ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

NGINX_DIR="$out/nginx"

# ---- servers ----
# start_server NAME [EXTRA_ARGS...]: starts it pinned to the server CPU,
# sets SRV_PID and SRV_PORT. For nginx SRV_PID is the master.
start_server() {
  local name=$1; shift
  local so="$out/$name.stdout" se="$out/$name.stderr"
  : > "$so"
  case "$name" in
    graceful_http) on_cpu $SERVER_CPU "$repo/build/examples/demo_server" --port 0 --grace-ms 5000 "$@" > "$so" 2> "$se" & SRV_PID=$! ;;
    go)            on_cpu $SERVER_CPU "$out/go_peer" --port 0 --grace-ms 5000 "$@" > "$so" 2> "$se" & SRV_PID=$! ;;
    httplib)       on_cpu $SERVER_CPU "$out/httplib_peer" --port 0 --grace-ms 5000 "$@" > "$so" 2> "$se" & SRV_PID=$! ;;
    nginx)         start_nginx "$so" "$se" ;;
  esac
  if ! wait_listening "$so"; then
    log "!! $name did not start: $(tail -n 3 "$se" 2>/dev/null)"
    stop_server; return 1
  fi
  SRV_PID=$(real_pid "$SRV_PID")
  case "$(readlink "/proc/$SRV_PID/exe" 2>/dev/null)" in
    */demo_server|*/go_peer|*/httplib_peer|*/nginx) ;;
    *) log "!! $name: pid $SRV_PID is not the server"; stop_server; return 1 ;;
  esac
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM
server_pids() { # the server's pids whose RSS counts: nginx master + workers
  local kids
  kids=$(cat "/proc/$SRV_PID/task/$SRV_PID/children" 2>/dev/null | tr ' ' ',' | sed 's/,$//')
  if [ -n "$kids" ]; then echo "$SRV_PID,$kids"; else echo "$SRV_PID"; fi
}

# ---- measurements; results go to $out/results as "key value" lines ----
res="$out/results"
: > "$res"
record() { echo "$1 $2" >> "$res"; log "   $1 = $2"; }

wrk_rps() { # wrk_rps ARGS...: prints Requests/sec (0 on failure)
  local o
  o=$(on_cpu $LOAD_CPU timeout $((DUR + 30)) wrk "$@" 2>&1)
  echo "$o" >> "$raw"
  local rps; rps=$(echo "$o" | awk '/^Requests\/sec:/ {print $2}')
  echo "${rps:-0}"
}

SERVERS="graceful_http go httplib nginx"
rotated() { # rotated R: the servers, starting with the R-th (round R starts with a different one)
  local all=($SERVERS) i
  for ((i = 0; i < ${#all[@]}; i++)); do echo "${all[(i + $1 - 1) % ${#all[@]}]}"; done
}
for round in $(seq 1 "$ROUNDS"); do
  for s in $(rotated "$round"); do
    log "== round $round: $s (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
    start_server "$s" || continue
    url="http://127.0.0.1:$SRV_PORT"
    (on_cpu $LOAD_CPU timeout 10 wrk -t1 -c64 -d1s "$url/" > /dev/null 2>&1) # warm-up
    log "-- $s keep-alive GET / -c64"
    record "ka.$s.$round" "$(wrk_rps -t1 -c64 -d${DUR}s "$url/")"
    log "-- $s new connection per request -c16"
    record "close.$s.$round" "$(wrk_rps -t1 -c16 -d${DUR}s -H 'Connection: close' "$url/")"
    if [ "$s" != nginx ]; then
      log "-- $s POST /echo 64 KiB -c16"
      rps=$(wrk_rps -t1 -c16 -d${DUR}s -s "$repo/bench/echo.lua" "$url/echo")
      record "echo.$s.$round" "$(awk -v r="$rps" 'BEGIN{printf "%.1f", r*65536/1e6}')"
    fi
    stop_server
  done
done

for n in $RSS_NS; do
  for s in $SERVERS; do
    log "== RSS per idle keep-alive connection: $s, $n connections"
    extra=()
    [ "$s" = httplib ] && extra=(--thread-per-conn --idle-interval-ms 1000)
    start_server "$s" "${extra[@]}" || continue
    o=$(on_cpu $LOAD_CPU timeout 300 "$out/idle_conns" --port "$SRV_PORT" --n "$n" --pid "$(server_pids)" 2>&1)
    log "$o"
    ok=$(echo "$o" | sed -n 's/.* ok=\([0-9]*\).*/\1/p')
    per=$(echo "$o" | sed -n 's/.* per_conn_kib=\([0-9.]*\).*/\1/p')
    if [ "${ok:-0}" = "$n" ]; then record "rss$n.$s" "$per"; else record "rss$n.$s" "fail(${ok:-0})"; fi
    stop_server
  done
done

# settle: let the kernel finish with the sockets of the phases before (the
# idle-connection phases leave 10,000s in TIME_WAIT, whose timers all fire
# about 60 s later) before timing sub-millisecond shutdowns. At most 90 s.
settle() {
  local i tw orphan
  for i in $(seq 180); do
    tw=$(awk '/^TCP:/ {for (j = 1; j < NF; j++) if ($j == "tw") print $(j + 1)}' /proc/net/sockstat)
    orphan=$(awk '/^TCP:/ {for (j = 1; j < NF; j++) if ($j == "orphan") print $(j + 1)}' /proc/net/sockstat)
    [ "${tw:-0}" -le 200 ] && [ "${orphan:-0}" -le 20 ] && break
    sleep 0.5
  done
  log "   settled after $((i / 2)) s: $(sed -n 's/^TCP: //p' /proc/net/sockstat)"
}
settle
log "== shutdown lag, $LAG_RUNS runs each"
o=$(on_cpu 0,1 timeout 600 "$out/shutdown_lag" --runs "$LAG_RUNS" 2>&1); log "$o"
record lag50.graceful_http "$(echo "$o" | sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p')"
record lag99.graceful_http "$(echo "$o" | sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p')"
o=$(on_cpu 0,1 timeout 600 "$out/go_shutdown_lag" --runs "$LAG_RUNS" 2>&1); log "$o"
record lag50.go "$(echo "$o" | sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p')"
record lag99.go "$(echo "$o" | sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p')"

log "== shutdown under load, drain delay ${DRAIN_MS} ms, $LOAD_CYCLES shutdowns each"
for s in graceful_http go httplib; do
  case "$s" in
    graceful_http) cmd=("$repo/build/examples/demo_server") ;;
    go) cmd=("$out/go_peer") ;;
    httplib) cmd=("$out/httplib_peer") ;;
  esac
  o=$(on_cpu $LOAD_CPU timeout 900 "$out/shutdown_load" --name "$s" --cycles "$LOAD_CYCLES" \
        --warm-ms 300 --log "$out/shutdown_load.$s.log" -- \
        sh -c 'echo "$0" > /proc/$$/autogroup 2>/dev/null; exec "$@"' "$NICE" \
        taskset -c $SERVER_CPU "${cmd[@]}" --port 0 --grace-ms 5000 --drain-delay-ms $DRAIN_MS 2>&1)
  log "$o"
  record "amb.$s" "$(echo "$o" | sed -n 's/.* ambiguous=\([0-9]*\).*/\1/p')"
  record "ambok.$s" "$(echo "$o" | sed -n 's/.* ok=\([0-9]*\).*/\1/p')"
done

# ---- the table ----
awk -v rounds="$ROUNDS" -v dur="$DUR" -v cycles="$LOAD_CYCLES" -v lagruns="$LAG_RUNS" -v rssns="$RSS_NS" '
function best(key,   n, i, b) {
  b = ""
  for (i = 1; i <= rounds; i++) if ((key "." i) in v && v[key "." i] + 0 > b + 0) b = v[key "." i] + 0
  return b
}
function rounds_of(key,   i, s) {
  s = ""
  for (i = 1; i <= rounds; i++) s = s (i > 1 ? " / " : "") (((key "." i) in v) ? sprintf("%.0f", v[key "." i]) : "—")
  return s
}
function median(key,   n, i, j, t, a) {
  n = 0
  for (i = 1; i <= rounds; i++) if ((key "." i) in v) a[++n] = v[key "." i] + 0
  if (n == 0) return ""
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function fmt(x, d) { if (x == "") return "—"; if (x ~ /fail/) return x; return sprintf("%." d "f", x) }
function ratio(ours, peer) {
  if (ours == "" || peer == "" || ours ~ /fail/ || peer ~ /fail/ || peer + 0 == 0) return "—"
  return sprintf(ours / peer < 0.1 ? "%.3f×" : "%.2f×", ours / peer)
}
function row(label, key, d, per_round, target,   o, g, h, n) {
  if (per_round) { o = best(key ".graceful_http"); g = best(key ".go"); h = best(key ".httplib"); n = best(key ".nginx") }
  else { o = v[key ".graceful_http"]; g = v[key ".go"]; h = v[key ".httplib"]; n = v[key ".nginx"] }
  printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", label, fmt(o, d), fmt(g, d), fmt(h, d), fmt(n, d),
    ratio(o, g), ratio(o, h), ratio(o, n), target
}
{ v[$1] = $2 }
END {
  print "| scenario | graceful_http | Go net/http | cpp-httplib | nginx | ours÷Go | ours÷httplib | ours÷nginx | target (issue 6) |"
  print "|---|---:|---:|---:|---:|---:|---:|---:|---|"
  row("keep-alive GET /, 64 conns (req/s)", "ka", 0, 1, "≥1.3× Go, ≥1.5× httplib")
  row("new connection per request, 16 clients (req/s)", "close", 0, 1, "≥1.1× Go")
  row("POST /echo 64 KiB, 16 conns (MB/s)", "echo", 1, 1, "≥1.0× Go")
  k = split(rssns, ns, " ")
  for (i = 1; i <= k; i++)
    row("RSS per idle keep-alive conn, " ns[i] " conns (KiB)", "rss" ns[i], 1, 0, ns[i] == 10000 ? "≤12 KiB" : "(Go ~16, httplib ~35)")
  row("shutdown lag p50, " lagruns " runs (ms)", "lag50", 3, 0, "")
  row("shutdown lag p99, " lagruns " runs (ms)", "lag99", 3, 0, "≤1 ms")
  row("ambiguous failures, " cycles " shutdowns under load, drain delay", "amb", 0, 0, "0")
  printf "\nthroughput: the best of %d round(s) of %d s per wrk run (other load on the machine only ever slows a\n", rounds, dur
  printf "server down); every round, in order (graceful_http | Go | cpp-httplib | nginx):\n"
  split("ka close echo", ks, " ")
  for (i = 1; i <= 3; i++)
    printf "- %s: %s | %s | %s | %s\n", ks[i], rounds_of(ks[i] ".graceful_http"), rounds_of(ks[i] ".go"),
      rounds_of(ks[i] ".httplib"), rounds_of(ks[i] ".nginx")
  printf "\nratios are ours divided by the peer (higher is better for\n"
  printf "throughput, lower is better for RSS, lag and failures). Requests completed during the shutdown runs:\n"
  printf "graceful_http %s, Go %s, cpp-httplib %s.\n", v["ambok.graceful_http"], v["ambok.go"], v["ambok.httplib"]
}' "$res" > "$out/table.md"

{
  echo
  echo "graceful_http bench ($mode), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
  echo "servers on CPU $SERVER_CPU, load on CPU $LOAD_CPU, autogroup nice $NICE, loadavg before: $LOADAVG0"
  echo "graceful_http.hpp: $(git -C "$repo" log -1 --format=%h 2>/dev/null)$(git -C "$repo" diff --quiet HEAD -- graceful_http.hpp 2>/dev/null || echo ' + uncommitted changes') sha1 $(sha1sum "$repo/graceful_http.hpp" | cut -c1-12); raw output: build/bench/raw.txt"
  echo
  cat "$out/table.md"
} | tee -a "$raw"

# ---- concurrency (issue 14): keep-alive GET / at 64, 1,000 and 4,000 connections ----
# Last, so that the TIME_WAIT sockets of its 4,000-connection runs are not
# in the way of the phases above. Prints its own table.
log "== concurrency: bench/concurrency.sh"
conc_args=(--nice "$NICE")
[ "$mode" = smoke ] && conc_args+=(--smoke)
bash "$repo/bench/concurrency.sh" "${conc_args[@]}" | tee -a "$raw"
