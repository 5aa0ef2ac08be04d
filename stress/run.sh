#!/usr/bin/env bash
# The stress suite of graceful_http (issue 4): builds build/stress/stress
# and runs every case in a process of its own, then prints the figures.
#
#   bash stress/run.sh                     all cases, default sizes (~2 min on 2 cores)
#   bash stress/run.sh --sanitizer=tsan    ThreadSanitizer build, smaller sizes
#   bash stress/run.sh --sanitizer=asan    AddressSanitizer + UBSan build, smaller sizes
#   bash stress/run.sh churn stuck         only these cases (load churn hostile stuck scale)
#
# Honours CXX. The last line is "N passed, M failed" (one per case); the
# exit status is non-zero if any case failed, crashed, hung or had a
# sanitizer report.
set -u
cd "$(dirname "$0")/.."

san=""
cases=()
for a in "$@"; do
  case "$a" in
    --sanitizer=tsan | --sanitizer=asan) san=${a#--sanitizer=} ;;
    --sanitizer=*) echo "run.sh: unknown sanitizer '${a#--sanitizer=}' (tsan or asan)" >&2; exit 2 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $a" >&2; exit 2 ;;
    *) cases+=("$a") ;;
  esac
done
[ ${#cases[@]} -gt 0 ] || cases=(load churn hostile stuck scale)

CXX=${CXX:-g++}
flags=(-std=c++17 -pthread -O2 -g -I. -Wall -Wextra)
out=build/stress
scale=1 # per-case time limits are multiplied by this
case "$san" in
  tsan)
    flags+=(-fsanitize=thread)
    out=build/stress/tsan
    scale=3
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
    ;;
  asan)
    flags+=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
    out=build/stress/asan
    scale=3
    export ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
    ;;
esac
bin=$out/stress
mkdir -p "$out"

# ---- build (again only when a source, the compiler or the flags changed) ----
stamp="$out/stress.flags"
want="$CXX ${flags[*]}"
build=0
[ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] || build=1
for src in stress/stress.cpp stress/stress_util.hpp tests/support.hpp graceful_http.hpp; do
  [ "$src" -nt "$bin" ] && build=1
done
if [ "$build" -eq 1 ]; then
  echo "== build: $CXX ${flags[*]} stress/stress.cpp -o $bin"
  if ! "$CXX" "${flags[@]}" stress/stress.cpp -o "$bin"; then
    echo "== build failed"
    echo "0 passed, ${#cases[@]} failed"
    exit 1
  fi
  echo "$want" >"$stamp"
fi

echo "== stress suite: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -sr)," \
  "$("$CXX" --version | head -n 1)${san:+, sanitizer $san}"

# ---- run: one process per case ----
limit_of() { # seconds before a case counts as hung
  case "$1" in
    load) echo $((240 * scale)) ;;
    stuck) echo $((60 * scale)) ;;
    *) echo $((120 * scale)) ;;
  esac
}
passed=0
failed=0
summary=()
figures=()
for c in "${cases[@]}"; do
  log="$out/$c.log"
  start=$(date +%s%N)
  timeout -k 10 "$(limit_of "$c")" "$bin" "$c" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  ms=$((($(date +%s%N) - start) / 1000000))
  secs="$((ms / 1000)).$((ms % 1000 / 100))"
  why=""
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    why="hung: killed after $(limit_of "$c") s"
  elif [ "$rc" -gt 128 ]; then
    why="died of signal $((rc - 128)) (SIG$(kill -l $((rc - 128)) 2>/dev/null))"
  elif grep -qE 'WARNING: ThreadSanitizer|ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
    why="sanitizer report (exit $rc)"
  elif [ "$rc" -ne 0 ]; then
    why="exit $rc"
  elif ! grep -q "^RESULT $c PASS" "$log"; then
    why="no RESULT line"
  fi
  if [ -z "$why" ]; then
    passed=$((passed + 1))
    summary+=("$(printf '  %-8s PASS  %6s s' "$c" "$secs")")
  else
    failed=$((failed + 1))
    summary+=("$(printf '  %-8s FAIL  %6s s  %s' "$c" "$secs" "$why")")
  fi
  while IFS= read -r line; do figures+=("$line"); done < <(grep '^FIGURE ' "$log")
done

echo
echo "== figures${san:+ (sanitizer $san: reduced sizes)}"
for f in "${figures[@]}"; do echo "  ${f#FIGURE }"; done
echo "== cases"
for s in "${summary[@]}"; do echo "$s"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
