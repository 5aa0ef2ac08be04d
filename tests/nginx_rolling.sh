#!/usr/bin/env bash
# Rolling restart of two demo_server upstreams behind a real nginx, under
# load: clients must see no 5xx and no failed request.
#
#   nginx (127.0.0.1:free port) --keepalive--> demo A, demo B (loopback)
#
# While a Python client sends GET / through nginx continuously (keep-alive
# connections and a new connection per request), each round restarts both
# instances one after the other, twice over:
#   1. SIGHUP re-exec handoff: the successor inherits the listening socket,
#      the old process drains (--drain-delay-ms) and exits;
#   2. SIGTERM, drain, then a new process binds the same port. While the
#      port is closed nginx's connect fails and it retries the other
#      instance (proxy_next_upstream error). max_fails=0: nginx's passive
#      marking ("temporarily disabled" for fail_timeout, counted in whole
#      seconds) would otherwise still count the instance restarted a moment
#      ago as down when the next one's port closes -- "no live upstreams",
#      502. The handoff never closes the port, so it needs no such care.
# Prints the counts and ends with a pass/fail line, then "N passed, M
# failed" for .ci/run. Exits non-zero on failure; skips (exit 0) when nginx
# is missing and cannot be installed. Bounded to about a minute.
#
# Usage: tests/nginx_rolling.sh [ROUNDS]   (default 2; DEMO=path overrides the binary)
set -u
cd "$(dirname "$0")/.."
root=$PWD
rounds=${1:-2}
dir=$root/build/nginx_rolling
demo=${DEMO:-$root/build/examples/demo_server}
drain_delay_ms=500

say() { echo "nginx_rolling: $*"; }
stamp() { echo "$(date +%s.%N) $*" >>"$dir/events.log"; }
finish() { # finish PASS|FAIL|SKIP message
  say "$1: $2"
  case $1 in
    PASS) echo "1 passed, 0 failed"; exit 0 ;;
    SKIP) echo "0 passed, 0 failed"; exit 0 ;;
    *) echo "0 passed, 1 failed"; exit 1 ;;
  esac
}

# ---- nginx: use it, or install Debian's nginx-light, or skip ----
nginx_bin=$(command -v nginx || true)
[ -z "$nginx_bin" ] && [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx
if [ -z "$nginx_bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  say "installing nginx-light"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq nginx-light || { apt-get update -qq && apt-get install -y -qq nginx-light; }; } >/dev/null 2>&1
  nginx_bin=$(command -v nginx || true)
  [ -z "$nginx_bin" ] && [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx
fi
[ -n "$nginx_bin" ] || finish SKIP "nginx is not installed and could not be installed"
command -v python3 >/dev/null || finish SKIP "python3 (the load client) is missing"
if [ ! -x "$demo" ]; then
  make -s build/examples/demo_server >/dev/null || finish FAIL "cannot build $demo"
fi

rm -rf "$dir" && mkdir -p "$dir/tmp"
pids_to_stop=() # every process this script started (demo generations, nginx, client)
cleanup() {
  [ -f "$dir/stop" ] || touch "$dir/stop"
  [ -f "$dir/nginx.pid" ] && kill -QUIT "$(cat "$dir/nginx.pid")" 2>/dev/null
  for p in "${pids_to_stop[@]}"; do kill -TERM "$p" 2>/dev/null; done
}
trap cleanup EXIT

# gone PID: the process has exited (a re-parented one may stay a zombie).
gone() { ! kill -0 "$1" 2>/dev/null || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
# wait_for SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.05
  done
}
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
has_more_lines() { [ "$(lines "$1")" -gt "$2" ]; }

# start NAME PORT: starts a demo_server generation; sets port_NAME, pid_NAME.
start() {
  local name=$1 port=$2 out=$dir/$1.out before
  before=$(lines "$out")
  "$demo" --port "$port" --drain-delay-ms "$drain_delay_ms" --grace-ms 10000 \
    >>"$out" 2>>"$dir/$name.err" &
  local pid=$!
  pids_to_stop+=("$pid")
  wait_for 10 has_more_lines "$out" "$before" || finish FAIL "$name did not start"
  local line; line=$(sed -n "$((before + 1))p" "$out")
  case $line in "listening on http://127.0.0.1:"*) ;; *) finish FAIL "$name said: $line" ;; esac
  eval "port_$name=${line##*:} pid_$name=$pid"
}

# handoff NAME: SIGHUP; the successor is ready when the old one says so.
handoff() {
  local name=$1 err=$dir/$1.err before old new
  eval "old=\$pid_$name"
  before=$(grep -c 'reload: pid' "$err")
  stamp "SIGHUP $name $old"
  kill -HUP "$old"
  wait_for 15 eval "[ \$(grep -c 'reload: pid' '$err') -gt $before ]" ||
    finish FAIL "$name: no successor became ready ($(tail -n 2 "$err"))"
  new=$(grep 'reload: pid' "$err" | tail -n 1 | sed -E 's/.*pid ([0-9]+) .*/\1/')
  pids_to_stop+=("$new")
  eval "pid_$name=$new"
  wait_for 15 gone "$old" || finish FAIL "$name: old process $old did not exit"
  stamp "handed-over $name $new"
  say "$name: handoff $old -> $new"
}

# restart NAME: SIGTERM, wait for the drain to end, start again on the same port.
restart() {
  local name=$1 old port
  eval "old=\$pid_$name port=\$port_$name"
  stamp "SIGTERM $name $old"
  kill -TERM "$old"
  wait_for 15 gone "$old" || finish FAIL "$name: $old did not exit"
  stamp "exited $name $old"
  start "$name" "$port"
  stamp "started $name"
  local now; eval "now=\$pid_$name"
  say "$name: restart $old -> $now"
}

start a 0
start b 0
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  log_format rolling '\$msec \$status \$upstream_addr \$upstream_status';
  access_log $dir/access.log rolling;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  upstream demo {
    server 127.0.0.1:$port_a max_fails=0;
    server 127.0.0.1:$port_b max_fails=0;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://demo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 2s;
    }
  }
}
EOF
"$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/nginx.stdout" 2>&1 ||
  finish FAIL "nginx did not start: $(cat "$dir/nginx.stdout")"
wait_for 10 curl -sf -o /dev/null "http://127.0.0.1:$nginx_port/" ||
  finish FAIL "nginx does not answer on $nginx_port"
say "nginx on 127.0.0.1:$nginx_port -> demo a :$port_a, demo b :$port_b (drain delay $drain_delay_ms ms)"

cat >"$dir/load.py" <<'EOF'
# Continuous GET / through nginx until the stop file appears: two threads on
# keep-alive connections, two with a new connection per request.
import http.client, json, os, sys, threading
port, stop, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock = threading.Lock()
counts = {"total": 0, "2xx": 0, "5xx": 0, "other": 0, "errors": 0}
first_errors = []

def count(key, detail=None):
    with lock:
        counts[key] += 1
        if key != "2xx" and detail and len(first_errors) < 10:
            first_errors.append(detail)

def client(keepalive):
    conn = None
    while not os.path.exists(stop):
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/", headers={} if keepalive else {"Connection": "close"})
            r = conn.getresponse()
            body = r.read()
            with lock:
                counts["total"] += 1
            if 200 <= r.status < 300 and body == b"hello, world\n":
                count("2xx")
            elif r.status >= 500:
                count("5xx", "%d %r" % (r.status, body[:80]))
            else:
                count("other", "%d %r" % (r.status, body[:80]))
            if not keepalive or r.will_close:
                conn.close()
                conn = None
        except Exception as e:  # nginx itself never restarts: any error counts
            with lock:
                counts["total"] += 1
            count("errors", repr(e))
            if conn is not None:
                conn.close()
            conn = None

threads = [threading.Thread(target=client, args=(ka,)) for ka in (True, True, False, False)]
for t in threads:
    t.start()
for t in threads:
    t.join()
counts["first_errors"] = first_errors
with open(out, "w") as f:
    json.dump(counts, f)
EOF
python3 "$dir/load.py" "$nginx_port" "$dir/stop" "$dir/load.json" &
load_pid=$!
pids_to_stop+=("$load_pid")
started=$SECONDS
wait_for 10 test -s "$dir/access.log" || finish FAIL "no traffic reaches nginx"
sleep 1 # load before the first restart

for round in $(seq 1 "$rounds"); do
  say "round $round: SIGHUP handoff of a, then b"
  handoff a; sleep 1
  handoff b; sleep 1
  say "round $round: SIGTERM and restart of a, then b"
  restart a; sleep 1
  restart b; sleep 1
done

touch "$dir/stop"
wait "$load_pid"
[ -s "$dir/load.json" ] || finish FAIL "the load client did not report"
took=$((SECONDS - started))
kill -QUIT "$(cat "$dir/nginx.pid")" 2>/dev/null
kill -TERM "$pid_a" "$pid_b" 2>/dev/null
wait_for 15 gone "$pid_a"; wait_for 15 gone "$pid_b"

read -r total ok five other errors < <(python3 -c '
import json,sys; c=json.load(open(sys.argv[1]))
print(c["total"], c["2xx"], c["5xx"], c["other"], c["errors"])' "$dir/load.json")
logged=$(wc -l <"$dir/access.log")
logged_5xx=$(awk '$2 >= 500' "$dir/access.log" | wc -l)
retried=$(grep -c ',' "$dir/access.log")
# Which phase each nginx retry (a request that tried both upstreams) fell in.
read -r retried_handoff retried_restart < <(python3 -c '
import sys
ev = [l.split() for l in open(sys.argv[1])]
spans = {"handoff": [], "restart": []}
for i, e in enumerate(ev):
    if e[1] in ("SIGHUP", "SIGTERM"):
        end = next(float(f[0]) for f in ev[i + 1:] if f[1] in ("handed-over", "started"))
        spans["handoff" if e[1] == "SIGHUP" else "restart"].append((float(e[0]), end + 0.2))
n = {"handoff": 0, "restart": 0}
for line in open(sys.argv[2]):
    t = float(line.split()[0])
    if "," in line:
        for k, ss in spans.items():
            n[k] += any(a <= t <= b for a, b in ss)
print(n["handoff"], n["restart"])' "$dir/events.log" "$dir/access.log")
upstream_refused=$(grep -c 'connect() failed' "$dir/error.log")
upstream_closed=$(grep -Ec 'prematurely closed|reset by peer|broken pipe' "$dir/error.log")
summaries=$(cat "$dir/a.err" "$dir/b.err" | grep -c '^demo_server: shutdown ')
undrained=$(cat "$dir/a.err" "$dir/b.err" | grep '^demo_server: shutdown ' | grep -vc 'drained=yes')
generations=$((2 + 4 * rounds))

say "$rounds rounds in ${took} s: $((2 * rounds)) handoffs, $((2 * rounds)) SIGTERM restarts, $generations demo_server processes"
say "client: total=$total 2xx=$ok 5xx=$five other=$other errors=$errors"
say "nginx access log: $logged requests, $logged_5xx 5xx, $retried retried on the other upstream ($retried_handoff during handoffs, $retried_restart during SIGTERM restarts)"
say "nginx error log: $upstream_refused upstream connects refused, $upstream_closed upstream connections closed under a request"
say "demo_server summaries: $summaries (expected $generations), not drained: $undrained"
python3 -c 'import json,sys; [print("  first error:", e) for e in json.load(open(sys.argv[1]))["first_errors"]]' "$dir/load.json"
if [ "$five" -eq 0 ] && [ "$errors" -eq 0 ] && [ "$other" -eq 0 ] && [ "$logged_5xx" -eq 0 ] &&
   [ "$ok" -gt 100 ] && [ "$summaries" -eq "$generations" ] && [ "$undrained" -eq 0 ]; then
  finish PASS "no 5xx and no failed request through $((4 * rounds)) rolling restarts ($ok requests)"
fi
finish FAIL "see $dir (client 5xx=$five errors=$errors other=$other, nginx 5xx=$logged_5xx)"
