# bench/procs.sh -- installing and process control shared by run.sh and concurrency.sh
# (sourced). The caller sets NICE (autogroup nice), NGINX_DIR (where
# nginx_conf writes nginx.conf and nginx its pid file) and a log function.
#
# on_cpu CPU CMD...: execs CMD pinned to CPU in a new session (its own
# autogroup, with autogroup nice $NICE). It replaces the calling shell, so
# call it only in a subshell: `on_cpu ... &` (then $! is CMD's own pid),
# `$(on_cpu ...)` or `(on_cpu ...)`.
install_tools() { # install_tools NAME: apt-get installs what the benchmarks need and is
  # missing (wrk, Go, cpp-httplib, nginx, a compiler, taskset, ss); exits on failure
  local need=()
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v go >/dev/null 2>&1 || need+=(golang-go)
  [ -f /usr/include/httplib.h ] || need+=(libcpp-httplib-dev)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
  command -v g++ >/dev/null 2>&1 || need+=(g++)
  command -v make >/dev/null 2>&1 || need+=(make)
  command -v taskset >/dev/null 2>&1 || need+=(util-linux)
  command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
  command -v ss >/dev/null 2>&1 || need+=(iproute2)
  [ ${#need[@]} -gt 0 ] || return 0
  log "== installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
    echo "$1: apt-get install failed" >&2; exit 1
  fi
}
on_cpu() {
  local cpu=$1; shift
  exec setsid sh -c 'echo "$0" > /proc/$$/autogroup 2>/dev/null; exec "$@"' "$NICE" taskset -c "$cpu" "$@"
}
# real_pid PID: follows setsid/sh/taskset wrappers (should one have forked)
# down to the server process itself.
real_pid() {
  local pid=$1 exe kid
  for _ in 1 2 3 4 5; do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null)
    case "$exe" in
      */setsid|*/sh|*/dash|*/bash|*/taskset)
        kid=$(awk '{print $1}' "/proc/$pid/task/$pid/children" 2>/dev/null)
        [ -n "$kid" ] || break
        pid=$kid ;;
      *) break ;;
    esac
  done
  echo "$pid"
}

SRV_PID=""; SRV_PORT=""
free_port() { # a port nobody listens on now (for nginx, which cannot pick one)
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768-)
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo 18080
}
wait_listening() { # wait_listening FILE: sets SRV_PORT from "listening on http://ADDR:PORT"
  local f=$1 line
  for _ in $(seq 1 100); do
    line=$(head -n 1 "$f" 2>/dev/null)
    case "$line" in listening\ on\ http://*) SRV_PORT=${line##*:}; return 0 ;; esac
    kill -0 "$SRV_PID" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
nginx_conf() { # nginx_conf PORT: writes $NGINX_DIR/nginx.conf (1 worker, keep-alive, GET /)
  local d="$NGINX_DIR"
  mkdir -p "$d/tmp"
  cat > "$d/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  keepalive_requests 1000000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$1 backlog=1024;
    location = / { default_type text/plain; return 200 "hello, world\n"; }
  }
}
NGINX
}
start_nginx() { # start_nginx STDOUT STDERR: nginx on a free port, pinned to $SERVER_CPU; sets
  # SRV_PID and writes "listening on http://127.0.0.1:PORT" to STDOUT once it accepts. nginx
  # cannot pick a free port itself, so up to three ports are tried.
  local so=$1 se=$2 p try
  for try in 1 2 3; do
    p=$(free_port); nginx_conf "$p"
    on_cpu $SERVER_CPU "$NGINX" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" > "$so" 2> "$se" & SRV_PID=$!
    for _ in $(seq 1 100); do
      kill -0 "$SRV_PID" 2>/dev/null || break
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && { echo "listening on http://127.0.0.1:$p" > "$so"; break; }
      sleep 0.05
    done
    [ -s "$so" ] && break
    wait "$SRV_PID" 2>/dev/null
  done
}
stop_server() { # SIGTERM (nginx: QUIT, its graceful stop) our own pid; KILL after 10 s
  [ -n "$SRV_PID" ] || return 0
  local sig=TERM
  [ -f "$NGINX_DIR/nginx.pid" ] && [ "$(cat "$NGINX_DIR/nginx.pid" 2>/dev/null)" = "$SRV_PID" ] && sig=QUIT
  kill -s $sig "$SRV_PID" 2>/dev/null
  for _ in $(seq 1 200); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$SRV_PID" 2>/dev/null && { log "!! pid $SRV_PID did not stop; KILL"; kill -KILL "$SRV_PID" 2>/dev/null; }
  wait "$SRV_PID" 2>/dev/null # reaps it when it is our child
  SRV_PID=""
}
