#!/usr/bin/env bash
# bench/concurrency.sh -- keep-alive GET / at 64, 1,000 and 4,000 connections (issue 14):
# req/s, p50, p99 and max latency of graceful_http, Go net/http, cpp-httplib and nginx.
#
#   bash bench/concurrency.sh           full: 8 s per wrk run, 3 interleaved rounds (~8 min)
#   bash bench/concurrency.sh --smoke   2 s per wrk run, 1 round (~1 min)
#   --levels "64 1000"   connection counts (default "64 1000 4000")
#   --only "graceful go" servers to run: graceful (graceful_http), go, httplib, nginx, graceful_b
#   --server BIN         the demo_server binary measured as graceful_http
#                        (default build/examples/demo_server, built with make examples)
#   --server-b BIN       also measure BIN as "graceful_b" in the same interleaved
#                        rounds (A/B of two headers under the same noise)
#   --dur S, --rounds N  override the mode's duration and round count
#   --trace              during each run at the trace level (default 1000; --trace-level N)
#                        sample once a second the listener's accept queue (Recv-Q/backlog
#                        of `ss -ltn`), the process's fds and threads and, for graceful_http,
#                        its acceptor's CPU time, runs (timeslices) and run-queue wait in
#                        that second (schedstat; the wait is booked when the thread gets
#                        the CPU, so "0 slices" means it never ran that second); at the
#                        end of the run per-thread timeslices, CPU, run-queue wait and
#                        involuntary switches over the run (min/median/max) from
#                        /proc/PID/task/*/schedstat and status. The acceptor is taken to
#                        be the process's second thread (run_until_signal starts serve()
#                        on the first thread it creates). The traced run is the measured
#                        run; the sampler runs on the load CPU.
#   --nice N             autogroup nice for servers and wrk, as in run.sh (default 0)
#
# Each measurement: a fresh server pinned to CPU 0, warmed for 1 s (wrk -c64, as run.sh),
# then `wrk -t1 -cN -dDURs --latency --timeout 10s http://127.0.0.1:PORT/` pinned to CPU 1,
# every process in its own session (setsid: its own autogroup; see run.sh). Rounds are
# interleaved: round R runs every level, and at each level every server, the server order
# rotated by one each round. A server is stopped by its own pid (TERM; nginx QUIT), and a
# trap stops it if the script is interrupted.
#
# Per level the table gives, for each server, the MEDIAN of the rounds of each figure
# (req/s, p50, p99, max; each column on its own), not the best: a latency tail is exactly
# what interference makes worse, so the best round would hide it; every round is listed
# below the table. Socket errors (wrk's connect/read/write/timeout) are summed over the
# rounds. wrk records a request's latency only when its response arrives: requests still
# waiting at the end of a run, or past --timeout (10 s, counted as "timeout"), are not in
# p99/max, so read the errors column with them.
#
# Servers as configured here (all with `ulimit -n` 65536 or the hard limit, and wrk too):
#   graceful_http  demo_server --port 0 --grace-ms 5000: no connection cap
#                  (Options::max_connections 0), listen backlog 1024
#   go             bench/peers/go: goroutine per connection, backlog = somaxconn
#   httplib        bench/peers/httplib with --backlog 1024 (Debian's library listens with
#                  httplib's default of 5) and --threads N = the connection count: a pool
#                  thread serves one keep-alive connection until it closes, so a pool
#                  smaller than N leaves the rest unserved for the whole run
#   nginx          1 worker, worker_connections 20000, backlog=1024, as in run.sh
#
# Output: the tables on stdout and in build/bench/concurrency.md, wrk's whole output and
# the traces in build/bench/concurrency-raw.txt. Only 127.0.0.1 is used.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/build/bench"
mode=full
NICE=0
LEVELS="64 1000 4000"
ONLY=""
SERVER_BIN=""
SERVER_B_BIN=""
DUR_OPT=""
ROUNDS_OPT=""
TRACE=0
TRACE_LEVEL=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) mode=smoke ;;
    --full) mode=full ;;
    --nice) NICE=${2:-0}; shift ;;
    --levels) LEVELS=${2:-}; shift ;;
    --only) ONLY=${2:-}; shift ;;
    --server) SERVER_BIN=${2:-}; shift ;;
    --server-b) SERVER_B_BIN=${2:-}; shift ;;
    --dur) DUR_OPT=${2:-}; shift ;;
    --rounds) ROUNDS_OPT=${2:-}; shift ;;
    --trace) TRACE=1 ;;
    --trace-level) TRACE=1; TRACE_LEVEL=${2:-1000}; shift ;;
    -h|--help) sed -n '2,52p' "$0"; exit 0 ;;
    *) echo "concurrency.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$mode" = smoke ]; then DUR=2; ROUNDS=1; else DUR=8; ROUNDS=3; fi
[ -n "$DUR_OPT" ] && DUR=$DUR_OPT
[ -n "$ROUNDS_OPT" ] && ROUNDS=$ROUNDS_OPT
SERVER_CPU=0
LOAD_CPU=1
[ "$(nproc)" -lt 2 ] && LOAD_CPU=0

mkdir -p "$out"
raw="$out/concurrency-raw.txt"
md="$out/concurrency.md"
res="$out/concurrency.results"
tracef="$out/concurrency.trace"
: > "$raw"; : > "$res"; : > "$tracef"
log() { echo "$*" | tee -a "$raw" >&2; }
. "$repo/bench/procs.sh" # install_tools, on_cpu, real_pid, free_port, wait_listening, nginx_conf, start_nginx, stop_server
LOADAVG0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- which servers ----
SERVERS=""
for s in ${ONLY:-graceful go httplib nginx graceful_b}; do
  case "$s" in
    graceful|graceful_http|ours) SERVERS="$SERVERS graceful_http" ;;
    go|httplib|nginx) SERVERS="$SERVERS $s" ;;
    graceful_b) [ -n "$SERVER_B_BIN" ] && SERVERS="$SERVERS graceful_b" ;;
    *) echo "concurrency.sh: unknown server $s (graceful go httplib nginx graceful_b)" >&2; exit 2 ;;
  esac
done
if [ -n "$SERVER_B_BIN" ] && [ -n "$ONLY" ]; then
  case " $ONLY " in *" graceful_b "*) ;; *) SERVERS="$SERVERS graceful_b" ;; esac
fi
SERVERS=${SERVERS# }
[ -n "$SERVERS" ] || { echo "concurrency.sh: no server selected" >&2; exit 2; }

# ---- install what is missing (as run.sh) ----
install_tools concurrency.sh
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# ---- build ----
log "== building ($mode mode)"
SERVER_GIVEN=1
if [ -z "$SERVER_BIN" ]; then
  SERVER_GIVEN=0
  make -s -C "$repo" examples >&2 || { echo "concurrency.sh: make examples failed" >&2; exit 1; }
  SERVER_BIN="$repo/build/examples/demo_server"
fi
for b in "$SERVER_BIN" ${SERVER_B_BIN:+"$SERVER_B_BIN"}; do
  [ -x "$b" ] || { echo "concurrency.sh: $b is not an executable" >&2; exit 2; }
done
SERVER_BIN=$(readlink -f "$SERVER_BIN")
[ -n "$SERVER_B_BIN" ] && SERVER_B_BIN=$(readlink -f "$SERVER_B_BIN")
CXXF="-std=c++17 -O2 -pthread"
hp="$out/httplib_peer" # built as run.sh builds it
if [ ! -x "$hp" ] || [ "$repo/bench/peers/httplib/main.cpp" -nt "$hp" ]; then
  # shellcheck disable=SC2046
  g++ $CXXF $(pkg-config --cflags cpp-httplib) "$repo/bench/peers/httplib/main.cpp" \
    -o "$hp" $(pkg-config --libs cpp-httplib) || { echo "concurrency.sh: build httplib_peer failed" >&2; exit 1; }
fi
export GOCACHE="$out/gocache" GOPATH="$out/gopath" GO111MODULE=off GOPROXY=off GOFLAGS= GOTOOLCHAIN=local
(cd "$repo/bench/peers/go" && go build -o "$out/go_peer" .) || { echo "concurrency.sh: build go_peer failed" >&2; exit 1; }

# Room for 4,000 connections and more on both sides.
ulimit -Hn 65536 2>/dev/null; ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
log "   ulimit -n $(ulimit -n), somaxconn $(cat /proc/sys/net/core/somaxconn 2>/dev/null)"

# ---- process control ----
NGINX_DIR="$out/nginx-conc"
start_server() { # start_server NAME CONNS: sets SRV_PID (nginx: the master) and SRV_PORT
  local name=$1 conns=$2
  local so="$out/conc.$name.stdout" se="$out/conc.$name.stderr"
  : > "$so"
  case "$name" in
    graceful_http) on_cpu $SERVER_CPU "$SERVER_BIN" --port 0 --grace-ms 5000 > "$so" 2> "$se" & SRV_PID=$! ;;
    graceful_b)    on_cpu $SERVER_CPU "$SERVER_B_BIN" --port 0 --grace-ms 5000 > "$so" 2> "$se" & SRV_PID=$! ;;
    go)            on_cpu $SERVER_CPU "$out/go_peer" --port 0 --grace-ms 5000 > "$so" 2> "$se" & SRV_PID=$! ;;
    httplib)       on_cpu $SERVER_CPU "$hp" --port 0 --grace-ms 5000 --threads "$conns" --backlog 1024 > "$so" 2> "$se" & SRV_PID=$! ;;
    nginx)         start_nginx "$so" "$se" ;;
  esac
  if ! wait_listening "$so"; then
    log "!! $name did not start: $(tail -n 3 "$se" 2>/dev/null)"
    stop_server; return 1
  fi
  SRV_PID=$(real_pid "$SRV_PID")
  case "$(readlink "/proc/$SRV_PID/exe" 2>/dev/null)" in
    "$SERVER_BIN"|"$SERVER_B_BIN"|*/go_peer|*/httplib_peer|*/nginx) ;;
    *) log "!! $name: pid $SRV_PID is not the server"; stop_server; return 1 ;;
  esac
}
WRK_PID=""
cleanup() {
  [ -n "$WRK_PID" ] && kill -TERM "$WRK_PID" 2>/dev/null && wait "$WRK_PID" 2>/dev/null
  WRK_PID=""
  [ -n "${SAMPLER_PID:-}" ] && kill -TERM "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
  SAMPLER_PID=""
  stop_server
}
trap 'cleanup' EXIT
trap 'cleanup; exit 130' INT TERM

# ---- trace: the accept queue, fds, threads and the scheduler's view ----
worker_pid() { # the process that holds the connections (nginx: its worker)
  if [ "$1" = nginx ]; then
    awk '{print $1}' "/proc/$SRV_PID/task/$SRV_PID/children" 2>/dev/null
  else
    echo "$SRV_PID"
  fi
}
snap_sched() { # snap_sched PID: "tid run_ns wait_ns timeslices voluntary nonvoluntary" per thread
  ( cd "/proc/$1/task" 2>/dev/null || exit 0
    { grep -H '' -- */schedstat; grep -H ctxt_switches -- */status; } 2>/dev/null | awk '
      { split($0, a, ":"); split(a[1], p, "/"); t = p[1] }
      p[2] == "schedstat" { split(a[2], f, " "); run[t] = f[1]; wt[t] = f[2]; sl[t] = f[3]; next }
      a[2] ~ /^nonvoluntary/ { nv[t] = a[3] + 0; next }
      a[2] ~ /^voluntary/ { vo[t] = a[3] + 0 }
      END { for (t in run) print t, run[t], wt[t], sl[t], vo[t] + 0, nv[t] + 0 }' )
}
acceptor_tid() { # graceful_http: run_until_signal's first thread runs serve() (the accept loop)
  ls "/proc/$1/task" 2>/dev/null | sort -n | awk -v pid="$1" '$1 != pid { print; exit }'
}
sampler() { # sampler NAME PID PORT DUR FILE ENDFILE: runs in the background during wrk
  local name=$1 pid=$2 port=$3 dur=$4 f=$5 endf=$6
  local t0 i now target q fds thr acc="" a0 a1 line
  case "$name" in graceful_http|graceful_b) acc=$(acceptor_tid "$pid") ;; esac
  t0=$(date +%s%N)
  a0=""; [ -n "$acc" ] && a0=$(cat "/proc/$pid/task/$acc/schedstat" 2>/dev/null)
  for ((i = 0; i <= dur; i++)); do
    if [ "$i" -eq "$dur" ]; then target=$((t0 + dur * 1000000000 - 250000000)); else target=$((t0 + i * 1000000000)); fi
    now=$(date +%s%N)
    [ "$target" -gt "$now" ] && sleep "$(awk -v n=$((target - now)) 'BEGIN{printf "%.3f", n/1e9}')"
    if [ "$i" -eq "$dur" ]; then snap_sched "$pid" > "$endf"; break; fi
    q=$(ss -ltnH "sport = :$port" 2>/dev/null | awk 'NR == 1 {print $2 "/" $3}')
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    thr=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    line=$(printf "   t=%2ds  accept queue (Recv-Q/backlog) %-9s fds %5s  threads %5s" "$i" "${q:-?}" "$fds" "${thr:-?}")
    if [ -n "$acc" ] && [ "$i" -gt 0 ]; then
      a1=$(cat "/proc/$pid/task/$acc/schedstat" 2>/dev/null)
      line="$line$(echo "$a0 $a1" | awk '
        NF == 6 { printf "  acceptor last 1 s: ran %6.1f ms in %5d slices, waited runnable %7.1f ms", ($4-$1)/1e6, $6-$3, ($5-$2)/1e6 }')"
      a0=$a1
    fi
    echo "$line" >> "$f"
  done
}
sched_summary() { # sched_summary NAME PID START END: per-thread deltas over the run
  awk -v name="$1" -v pid="$2" -v acc="${5:-}" '
    function med(a, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n ? ((n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) : 0
    }
    FILENAME == ARGV[1] { r0[$1] = $2; w0[$1] = $3; s0[$1] = $4; v0[$1] = $5; n0[$1] = $6; next }
    {
      run = $2 - r0[$1]; wt = $3 - w0[$1]; sl = $4 - s0[$1]; vo = $5 - v0[$1]; nv = $6 - n0[$1]
      total += run; nthr++
      if ($1 == pid || $1 == acc) {
        label = ($1 == pid) ? "main thread" : "acceptor (thread 2)"
        printf "   %-20s ran %8.1f ms in %7d slices, waited runnable %8.1f ms (%.2f ms per slice), switches %d voluntary %d involuntary\n",
          label, run / 1e6, sl, wt / 1e6, sl ? wt / 1e6 / sl : 0, vo, nv
        if ($1 == acc) accrun = run
        next
      }
      n++; S[n] = sl; R[n] = run / 1e6; W[n] = wt / 1e6; V[n] = nv
      if (sl > 0) act++
    }
    END {
      if (n) {
        # med() sorts its array: take min/max after
        m = med(S, n); printf "   other threads: %d (%d ran in the window)\n   timeslices per thread  min %d  median %d  max %d\n", n, act, S[1], m, S[n]
        m = med(R, n); printf "   CPU per thread (ms)    min %.1f  median %.1f  max %.1f\n", R[1], m, R[n]
        m = med(W, n); printf "   waited runnable (ms)   min %.1f  median %.1f  max %.1f\n", W[1], m, W[n]
        m = med(V, n); printf "   involuntary switches   min %d  median %d  max %d\n", V[1], m, V[n]
      }
      if (acc != "" && total > 0)
        printf "   acceptor share of the process CPU in the window: %.2f %% (1/%d threads = %.2f %%)\n", 100 * accrun / total, nthr, 100 / nthr
    }' "$3" "$4"
}

# ---- one measurement ----
parse_wrk() { # stdin: wrk --latency output; prints "rps p50 p99 max conn read write timeout non2xx requests" (ms)
  awk '
    function ms(s,   v) {
      v = s + 0
      if (s ~ /us$/) return v / 1000
      if (s ~ /ms$/) return v
      if (s ~ /m$/) return v * 60000
      if (s ~ /h$/) return v * 3600000
      if (s ~ /s$/) return v * 1000
      return v
    }
    /^ *Latency / && !lat { mx = ms($4); lat = 1 }
    /^ *50% / { p50 = ms($2) }
    /^ *99% / { p99 = ms($2) }
    /Socket errors:/ { gsub(",", ""); ec = $4; er = $6; ew = $8; et = $10 }
    /Non-2xx or 3xx responses:/ { n2 = $NF }
    /requests in/ { req = $1 }
    /^Requests\/sec:/ { rps = $2 }
    END { printf "%s %s %s %s %d %d %d %d %d %d\n", (rps == "" ? 0 : rps), (p50 == "" ? "-" : p50), (p99 == "" ? "-" : p99),
          (mx == "" ? "-" : mx), ec, er, ew, et, n2, req }'
}
measure() { # measure NAME LEVEL ROUND
  local name=$1 c=$2 r=$3 url o wfile tpid="" port
  start_server "$name" "$c" || { echo "$name $c $r fail" >> "$res"; return; }
  url="http://127.0.0.1:$SRV_PORT/"; port=$SRV_PORT
  (on_cpu $LOAD_CPU timeout 10 wrk -t1 -c64 -d1s "$url" > /dev/null 2>&1) # warm-up, as run.sh
  wfile="$out/conc.wrk.out"
  local tracing=0
  [ "$TRACE" = 1 ] && [ "$c" = "$TRACE_LEVEL" ] && tracing=1
  if [ $tracing = 1 ]; then
    tpid=$(worker_pid "$name")
    snap_sched "$tpid" > "$tracef.start"
    : > "$tracef.samples"; : > "$tracef.end"
  fi
  (on_cpu $LOAD_CPU timeout $((DUR + 30)) wrk -t1 -c"$c" -d"${DUR}s" --latency --timeout 10s "$url" > "$wfile" 2>&1) & WRK_PID=$!
  if [ $tracing = 1 ]; then
    (exec taskset -c $LOAD_CPU bash -c "$(declare -f sampler snap_sched acceptor_tid); sampler $name $tpid $port $DUR $tracef.samples $tracef.end") & SAMPLER_PID=$!
  fi
  wait "$WRK_PID"; WRK_PID=""
  if [ -n "${SAMPLER_PID:-}" ]; then wait "$SAMPLER_PID"; SAMPLER_PID=""; fi
  o=$(cat "$wfile")
  echo "$o" >> "$raw"
  local f; f=$(echo "$o" | parse_wrk)
  echo "$name $c $r $f" >> "$res"
  log "   $name -c$c round $r: $(echo "$f" | awk '{printf "%.0f req/s  p50 %s ms  p99 %s ms  max %s ms  errors c/r/w/t %d/%d/%d/%d  non-2xx %d", $1, $2, $3, $4, $5, $6, $7, $8, $9}')"
  if [ $tracing = 1 ]; then
    local acc=""
    case "$name" in graceful_http|graceful_b) acc=$(acceptor_tid "$tpid") ;; esac
    {
      echo "trace: $name, $c connections, round $r, pid $tpid, port $port ($(cut -d' ' -f1-3 /proc/loadavg) loadavg)"
      cat "$tracef.samples"
      echo "   per-thread over the run (/proc/$tpid/task/*/schedstat, start of wrk to $DUR s - 0.25 s):"
      if [ -s "$tracef.end" ]; then sched_summary "$name" "$tpid" "$tracef.start" "$tracef.end" "$acc"
      else echo "   (no end snapshot)"; fi
    } | tee -a "$raw" >> "$tracef"
  fi
  stop_server
}

rotated() { # rotated R: the servers, starting with the R-th
  local all=($SERVERS) i
  for ((i = 0; i < ${#all[@]}; i++)); do echo "${all[(i + $1 - 1) % ${#all[@]}]}"; done
}

log "== concurrency: levels $LEVELS, servers $SERVERS, $ROUNDS round(s) of $DUR s"
: > "$tracef.all"
for round in $(seq 1 "$ROUNDS"); do
  for c in $LEVELS; do
    for s in $(rotated "$round"); do
      log "== round $round, $c connections: $s (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
      : > "$tracef"
      measure "$s" "$c" "$round"
      cat "$tracef" >> "$tracef.all"
      [ -s "$tracef" ] && cat "$tracef" >&2
    done
  done
done

# ---- the tables ----
tables() {
  awk -v rounds="$ROUNDS" -v levels="$LEVELS" -v servers="$SERVERS" '
  function med(key,   n, i, j, t, a) {
    n = 0
    for (i = 1; i <= rounds; i++) if ((key SUBSEP i) in v && v[key SUBSEP i] != "-") a[++n] = v[key SUBSEP i] + 0
    if (n == 0) return ""
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function f(x, d) { return x == "" ? "—" : sprintf("%." d "f", x) }
  function ms(x) { return x == "" ? "—" : (x < 10 ? sprintf("%.2f", x) : (x < 100 ? sprintf("%.1f", x) : sprintf("%.0f", x))) }
  function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "—" : sprintf("%.2f×", a / b) }
  function ok(cond) { return cond ? "yes" : "**no**" }
  $4 == "fail" { failed[$1, $2, $3] = 1; next }
  {
    s = $1; c = $2; r = $3
    v[s, c, "rps", r] = $4; v[s, c, "p50", r] = $5; v[s, c, "p99", r] = $6; v[s, c, "max", r] = $7
    e[s, c, "c"] += $8; e[s, c, "r"] += $9; e[s, c, "w"] += $10; e[s, c, "t"] += $11; n2[s, c] += $12
    seen[s, c] = 1
  }
  END {
    ns = split(servers, S, " "); nl = split(levels, L, " ")
    for (li = 1; li <= nl; li++) {
      c = L[li]
      printf "\n### keep-alive GET /, %d connections (median of %d round(s))\n\n", c, rounds
      print "| server | req/s | p50 ms | p99 ms | max ms | socket errors c/r/w/t | non-2xx | req/s÷Go | p99÷Go | max÷Go | p99÷nginx |"
      print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      gr = med("go" SUBSEP c SUBSEP "rps"); gp = med("go" SUBSEP c SUBSEP "p99"); gm = med("go" SUBSEP c SUBSEP "max")
      np = med("nginx" SUBSEP c SUBSEP "p99")
      for (si = 1; si <= ns; si++) {
        s = S[si]
        if (!((s, c) in seen)) { printf "| %s | failed to start | | | | | | | | | |\n", s; continue }
        rr = med(s SUBSEP c SUBSEP "rps"); p5 = med(s SUBSEP c SUBSEP "p50"); p9 = med(s SUBSEP c SUBSEP "p99"); mx = med(s SUBSEP c SUBSEP "max")
        printf "| %s | %s | %s | %s | %s | %d/%d/%d/%d | %d | %s | %s | %s | %s |\n", s, f(rr, 0), ms(p5), ms(p9), ms(mx),
          e[s, c, "c"], e[s, c, "r"], e[s, c, "w"], e[s, c, "t"], n2[s, c],
          s == "go" ? "" : ratio(rr, gr), s == "go" ? "" : ratio(p9, gp), s == "go" ? "" : ratio(mx, gm), s == "nginx" ? "" : ratio(p9, np)
        if (s ~ /^graceful/ && c + 0 >= 1000 && gp != "") {
          verdict[c] = verdict[c] sprintf("%s at %d (issue 14 targets): p99 ≤ Go %s; p99 ≤ 2× nginx %s; max ≤ 3× Go %s; req/s ≥ 1.2× Go %s\n",
            s, c, ok(p9 <= gp), np == "" ? "—" : ok(p9 <= 2 * np), ok(mx <= 3 * gm), ok(rr >= 1.2 * gr))
        }
      }
      if (c in verdict) printf "\n%s", verdict[c]
      printf "\nevery round (req/s / p50 / p99 / max ms):\n"
      for (si = 1; si <= ns; si++) {
        s = S[si]; line = ""
        for (r = 1; r <= rounds; r++) {
          if ((s, c, "rps", r) in v)
            line = line sprintf("%sr%d %.0f / %s / %s / %s", r > 1 ? "; " : "", r, v[s, c, "rps", r], v[s, c, "p50", r], v[s, c, "p99", r], v[s, c, "max", r])
          else line = line sprintf("%sr%d —", r > 1 ? "; " : "", r)
        }
        printf "- %s: %s\n", s, line
      }
    }
  }' "$res"
}
{
  echo "graceful_http concurrency bench ($mode: $ROUNDS round(s) of $DUR s), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, kernel $(uname -r)"
  echo "servers on CPU $SERVER_CPU, wrk -t1 --latency --timeout 10s on CPU $LOAD_CPU, autogroup nice $NICE, loadavg before: $LOADAVG0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ "$SERVER_GIVEN" = 0 ]; then
    echo "graceful_http: $SERVER_BIN (sha1 $(sha1sum "$SERVER_BIN" | cut -c1-12)), built from graceful_http.hpp $(git -C "$repo" log -1 --format=%h 2>/dev/null)$(git -C "$repo" diff --quiet HEAD -- graceful_http.hpp 2>/dev/null || echo ' + uncommitted changes')"
  else
    echo "graceful_http: $SERVER_BIN (sha1 $(sha1sum "$SERVER_BIN" | cut -c1-12)), given with --server"
  fi
  [ -n "$SERVER_B_BIN" ] && echo "graceful_b: $SERVER_B_BIN (sha1 $(sha1sum "$SERVER_B_BIN" | cut -c1-12))"
  echo "httplib: pool of N threads for N connections, backlog 1024; nginx: 1 worker; figures: median of the rounds per column, errors summed"
  tables
  if [ -s "$tracef.all" ]; then echo; echo '```'; cat "$tracef.all"; echo '```'; fi
} > "$md"
rm -f "$tracef" "$tracef.start" "$tracef.end" "$tracef.samples" "$tracef.all"
cat "$md" | tee -a "$raw"
