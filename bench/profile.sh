#!/usr/bin/env bash
# bench/profile.sh -- where graceful_http spends a keep-alive GET / request.
#
#   bash bench/profile.sh        (after bench/run.sh has built build/bench/)
#
# 1. callgrind (exact user-space instruction counts, unaffected by other
#    load on the machine): demo_server under valgrind, a fixed load of
#    64 keep-alive connections x 200 requests (bench/kaclient); reports
#    instructions per request, the top functions, and calls per request of
#    malloc, snprintf, mutex locks, clock reads.
# 2. strace -c: system calls per request (same fixed load).
# 3. perf stat / perf record with software events (cpu-clock,
#    context-switches work where hardware counters do not): CPU time and
#    context switches per request under wrk -c64 for every server, and the
#    kernel/user split for graceful_http and Go.
# Output: build/bench/prof/summary.txt (and the raw files beside it).
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/build/bench"
prof="$out/prof"
mkdir -p "$prof"
sum="$prof/summary.txt"
: > "$sum"
say() { echo "$*" | tee -a "$sum"; }
for t in go_peer httplib_peer; do
  [ -x "$out/$t" ] || { echo "profile.sh: run bench/run.sh first (missing $out/$t)" >&2; exit 1; }
done
g++ -std=c++17 -O2 -pthread "$repo/bench/kaclient.cpp" -o "$out/kaclient" || exit 1
make -s -C "$repo" examples >&2 || exit 1
command -v valgrind >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
command -v strace >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; }
CONNS=64 REQS=200
N=$((CONNS * REQS))
demo="$repo/build/examples/demo_server"
PID=""
cleanup() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null; wait 2>/dev/null; }
trap cleanup EXIT
wait_port() { # wait_port FILE -> echoes the port from "listening on"
  for _ in $(seq 1 200); do
    l=$(head -n 1 "$1" 2>/dev/null)
    case "$l" in listening\ on\ http://*) echo "${l##*:}"; return 0 ;; esac
    sleep 0.05
  done
  return 1
}

say "graceful_http profile, $(date -u '+%Y-%m-%d %H:%M UTC'), graceful_http.hpp sha1 $(sha1sum "$repo/graceful_http.hpp" | cut -c1-12)"

# ---- 1. callgrind: a baseline run (start, 1 request, stop) and the load run ----
for run in base load; do
  rm -f "$prof/cg.$run" "$prof/ds.out"
  setsid valgrind --tool=callgrind --callgrind-out-file="$prof/cg.$run" "$demo" --port 0 \
    > "$prof/ds.out" 2> "$prof/vg.$run.err" &
  PID=$!
  port=$(wait_port "$prof/ds.out") || { echo "profile.sh: demo_server under valgrind did not start" >&2; exit 1; }
  if [ $run = base ]; then "$out/kaclient" --port "$port" --conns 1 --requests 1 > /dev/null
  else "$out/kaclient" --port "$port" --conns $CONNS --requests $REQS | tee -a "$sum"; fi
  kill -TERM "$PID"; wait "$PID" 2>/dev/null; PID=""
done
python3 - "$prof/cg.base" "$prof/cg.load" "$N" <<'EOF' | tee -a "$sum"
import re, sys, collections
def load(path):
    names, calls, self_ir, total = {}, collections.Counter(), collections.Counter(), 0
    fn = cfn = None
    in_call = False
    for line in open(path):
        m = re.match(r'(c?fn)=\((\d+)\)(?: (.*))?', line)
        if m:
            kind, i, name = m.groups()
            if name: names[i] = name.strip()
            if kind == 'fn': fn = i
            else: cfn = i
            continue
        m = re.match(r'calls=(\d+)', line)
        if m:
            calls[cfn] += int(m.group(1)); in_call = True; continue
        m = re.match(r'(\+?\d+|\*|-\d+) (\d+)$', line.strip())
        if m:
            if in_call: in_call = False  # inclusive cost line of a call
            else: self_ir[fn] += int(m.group(2))
            continue
        m = re.match(r'summary: (\d+)', line) or re.match(r'totals: (\d+)', line)
        if m: total = int(m.group(1))
    return ({names.get(k, k): v for k, v in calls.items()},
            {names.get(k, k): v for k, v in self_ir.items()}, total)
bc, bs, bt = load(sys.argv[1]); lc, ls, lt = load(sys.argv[2]); n = int(sys.argv[3])
print(f"callgrind: {(lt - bt) / n:,.0f} user-space instructions per request (load run minus a start/stop baseline)")
print("top self cost per request (instructions):")
rows = sorted(((ls[k] - bs.get(k, 0)) / n, k) for k in ls)
for v, k in reversed(rows[-22:]):
    print(f"  {v:8.0f}  {k[:110]}")
print("calls per request:")
pat = re.compile(r'^(malloc|free|operator new\(unsigned long\)|snprintf|__strftime_internal|gmtime_r|'
                 r'pthread_mutex_lock.*|clock_gettime.*|time_syscall|poll|recv|sendmsg|writev|'
                 r'std::condition_variable::notify_all\(\)|pthread_cond_broadcast.*)$')
for k in sorted(lc):
    if pat.match(k):
        v = (lc[k] - bc.get(k, 0)) / n
        if v >= 0.005: print(f"  {v:6.2f}  {k}")
EOF

say "inclusive cost per request of graceful_http's request-path functions (instructions):"
callgrind_annotate --inclusive=yes "$prof/cg.load" 2>/dev/null |
  awk -v n=$N '/graceful_http::|snprintf \[|__strftime|^ *[0-9,]+ .*malloc.c:malloc / {
    c = $1; gsub(",", "", c); if (c / n < 40) next
    line = $0; sub(/^ *[0-9,]+ +\([ 0-9.]+%\) +/, "", line); sub(/^[^:]*:/, "", line); sub(/\(.*/, "", line); sub(/ \[.*/, "", line)
    if (seen[line]++) next
    printf "  %8.0f  %s\n", c / n, line }' | head -24 | tee -a "$sum"

# ---- 2. strace -c: system calls per request ----
rm -f "$prof/ds.out" "$prof/strace.txt"
setsid strace -f -c -o "$prof/strace.txt" "$demo" --port 0 > "$prof/ds.out" 2>/dev/null &
PID=$!
port=$(wait_port "$prof/ds.out") || exit 1
"$out/kaclient" --port "$port" --conns $CONNS --requests $REQS > /dev/null
kid=$(cat "/proc/$PID/task/$PID/children" 2>/dev/null | awk '{print $1}')
[ -n "$kid" ] && kill -TERM "$kid"
wait "$PID" 2>/dev/null; PID=""
say "strace -f -c, keep-alive, per request (startup and shutdown included, $N requests):"
awk -v n=$N '$1 ~ /^[0-9.]+$/ && NF >= 5 { c = $4; name = $NF; if (c / n >= 0.005) printf "  %6.2f  %s\n", c / n, name }' "$prof/strace.txt" | tee -a "$sum"
# the same for a new connection per request (16 clients x 100 connections)
NC=1600
rm -f "$prof/ds.out" "$prof/strace.close.txt"
setsid strace -f -c -o "$prof/strace.close.txt" "$demo" --port 0 > "$prof/ds.out" 2>/dev/null &
PID=$!
port=$(wait_port "$prof/ds.out") || exit 1
"$out/kaclient" --port "$port" --conns 16 --requests 100 --close 1 > /dev/null
kid=$(cat "/proc/$PID/task/$PID/children" 2>/dev/null | awk '{print $1}')
[ -n "$kid" ] && kill -TERM "$kid"
wait "$PID" 2>/dev/null; PID=""
say "strace -f -c, new connection per request (Connection: close), per connection ($NC connections):"
awk -v n=$NC '$1 ~ /^[0-9.]+$/ && NF >= 5 { c = $4; name = $NF; if (c / n >= 0.05) printf "  %6.2f  %s\n", c / n, name }' "$prof/strace.close.txt" | tee -a "$sum"

# ---- 2b. where the RSS of an idle keep-alive connection goes (smaps) ----
g++ -std=c++17 -O2 -pthread "$repo/bench/idle_conns.cpp" -o "$out/idle_conns" || exit 1
rm -f "$prof/ds.out"
setsid "$demo" --port 0 > "$prof/ds.out" 2>/dev/null &
PID=$!
port=$(wait_port "$prof/ds.out") || exit 1
"$out/idle_conns" --port "$port" --n 2000 --pid "$PID" --hold-ms 3000 > "$prof/idle.txt" &
ic=$!
for _ in $(seq 1 600); do [ -s "$prof/idle.txt" ] && break; sleep 0.05; done
cp "/proc/$PID/smaps" "$prof/smaps.2000" 2>/dev/null
cp "/proc/$PID/status" "$prof/status.2000" 2>/dev/null
wait $ic
kill -TERM "$PID"; wait "$PID" 2>/dev/null; PID=""
say "RSS of demo_server with 2000 idle keep-alive connections, by mapping: $(cat "$prof/idle.txt")"
python3 - "$prof/smaps.2000" 2000 <<'EOF2' | tee -a "$sum"
import re, sys, collections
maps, cur = [], None
for line in open(sys.argv[1]):
    m = re.match(r'^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$', line)
    if m:
        cur = {'size': (int(m.group(2), 16) - int(m.group(1), 16)) // 1024, 'perm': m.group(3),
               'name': m.group(4).strip(), 'rss': 0}
        maps.append(cur)
    elif line.startswith('Rss:') and cur is not None:
        cur['rss'] = int(line.split()[1])
n = int(sys.argv[2])
cat = collections.Counter(); cnt = collections.Counter(); stack_rss = collections.Counter()
for m in maps:
    if m['name'] == '[heap]': k = 'heap ([heap])'
    elif m['name']: k = 'files and other named'
    elif m['perm'].startswith('rw') and m['size'] in (256, 260, 264):
        k = 'thread stacks (256 KiB each)'; stack_rss[m['rss']] += 1
    elif m['perm'].startswith('rw'): k = 'other anonymous (malloc arenas)'
    else: k = 'guard pages and reserved'
    cat[k] += m['rss']; cnt[k] += 1
for k, v in cat.most_common():
    if k.startswith('files'):  # the binary and shared libraries: there before any connection
        print(f"  {v:8d} KiB in {cnt[k]:5d} mappings  {k} (present before the connections)")
    else:
        print(f"  {v:8d} KiB in {cnt[k]:5d} mappings  {k}  = {v / n:5.2f} KiB per connection")
print("  thread stack RSS per thread (KiB: threads): " +
      ", ".join(f"{k}: {v}" for k, v in sorted(stack_rss.items())))
EOF2

# ---- 3. perf with software events under wrk -c64, server on CPU 0, wrk on CPU 1 ----
if perf stat -e cpu-clock true > /dev/null 2>&1; then
  say "perf (software events), wrk -t1 -c64 -d5s, server on CPU 0 and wrk on CPU 1, each in its own session"
  say "(CPU time counts the whole 6 s window; the server is idle outside the 5 s of load):"
  for s in graceful_http go httplib; do
    case $s in
      graceful_http) cmd=("$demo" --port 0) ;;
      go) cmd=("$out/go_peer" --port 0) ;;
      httplib) cmd=("$out/httplib_peer" --port 0 --threads 64) ;;
    esac
    setsid taskset -c 0 "${cmd[@]}" > "$prof/srv.out" 2>/dev/null &
    PID=$!
    port=$(wait_port "$prof/srv.out") || exit 1
    setsid taskset -c 1 wrk -t1 -c64 -d1s "http://127.0.0.1:$port/" > /dev/null
    # perf attaches to the threads that exist when it starts (and inherits
    # to their children): let it finish attaching before the load begins.
    perf stat -e context-switches,task-clock -p "$PID" -o "$prof/pstat.$s" -- sleep 6 &
    pp=$!
    sleep 0.5
    setsid taskset -c 1 wrk -t1 -c64 -d5s "http://127.0.0.1:$port/" > "$prof/wrk.$s"
    wait $pp
    req=$(awk '/requests in/ {print $1}' "$prof/wrk.$s")
    cs=$(awk '/context-switches/ {gsub(",", "", $1); print $1}' "$prof/pstat.$s")
    tc=$(awk '/task-clock/ {gsub(",", "", $1); print $1}' "$prof/pstat.$s")
    awk -v s=$s -v r="$req" -v cs="$cs" -v tc="$tc" 'BEGIN { printf "  %-14s %7.0f req/s  %5.2f context switches/request  %5.1f us CPU/request\n", s, r / 5, cs / r, tc * 1000 / r }' | tee -a "$sum"
    if [ $s != httplib ]; then
      perf record -e cpu-clock -F 2000 -p "$PID" -o "$prof/perf.$s.data" -- sleep 5 > /dev/null 2>&1 &
      pp=$!
      sleep 0.5
      setsid taskset -c 1 wrk -t1 -c64 -d4s "http://127.0.0.1:$port/" > /dev/null
      wait $pp
      say "  $s: CPU samples by object (kernel vs user), then the top symbols:"
      perf report -i "$prof/perf.$s.data" --no-children --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' | head -4 | sed 's/^/    /' | tee -a "$sum"
      perf report -i "$prof/perf.$s.data" --no-children --sort sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -8 | sed 's/^/    /' | tee -a "$sum"
    fi
    kill -TERM "$PID"; wait "$PID" 2>/dev/null; PID=""
  done
else
  say "perf: software events not available; skipped"
fi
echo "written: $sum" >&2
