#!/usr/bin/env bash
# Runs a Catch2 test binary and ends the output with one line
# "N passed, M failed" (test cases), the form CI counts. Exit status is
# the binary's. Usage: tests/summary.sh BINARY [catch2 args...]
set -u
bin=$1; shift
log=$(mktemp)
"$bin" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
passed=0; failed=0
if line=$(grep -E '^test cases: ' "$log" | tail -n 1) && [ -n "$line" ]; then
  total=$(echo "$line" | sed -E 's/^test cases: *([0-9]+).*/\1/')
  passed=$(echo "$line" | sed -nE 's/.*\| *([0-9]+) passed.*/\1/p'); passed=${passed:-0}
  failed=$(echo "$line" | sed -nE 's/.*\| *([0-9]+) failed.*/\1/p'); failed=${failed:-$((total - passed))}
elif line=$(grep -E '^All tests passed \(' "$log" | tail -n 1) && [ -n "$line" ]; then
  passed=$(echo "$line" | sed -E 's/.* in ([0-9]+) test case.*/\1/')
fi
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
rm -f "$log"
echo "$passed passed, $failed failed"
exit "$rc"
