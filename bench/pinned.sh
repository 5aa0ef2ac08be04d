# bench/pinned.sh -- sourced by percall.sh and loadcore.sh.
#
# start_pinned OUTFILE BIN: starts a demo-server-contract BIN on CPU 0 in
# its own session, waits for its "listening on http://HOST:PORT" line and
# sets PINNED_PID and PINNED_PORT. The caller ends it with
# `kill -TERM "$PINNED_PID"; wait "$PINNED_PID"`.
start_pinned() {
  local so=$1 bin=$2 line=""
  setsid taskset -c 0 "$bin" --port 0 --grace-ms 5000 > "$so" 2>/dev/null & PINNED_PID=$!
  for _ in $(seq 100); do
    line=$(head -n 1 "$so" 2>/dev/null)
    case "$line" in listening\ on\ http://*) break ;; esac
    sleep 0.05
  done
  PINNED_PORT=${line##*:}
}
