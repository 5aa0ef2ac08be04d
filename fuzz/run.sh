#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] -- build and run graceful_http's libFuzzer targets.
#
#   bash fuzz/run.sh 120        # from the repository root; default 60 s
#
# Builds every target in the list below (fuzz/fuzz_<name>.cpp) with
#   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I.
# into build/fuzz/, copies the committed seed corpus (fuzz/corpus/*) into a
# working corpus under build/fuzz/corpus/ (the committed files are never
# modified; the working corpus keeps growing across runs, `rm -rf
# build/fuzz` starts afresh), then runs each target for SECONDS/(number of targets).
# Exits non-zero if a target crashed, leaked, timed out, ran out of memory
# or failed to build; the reproducer's path is printed. To replay one:
#   build/fuzz/fuzz_request path/to/crash-file
#
# Environment: CLANGXX (default clang++), FUZZ_FLAGS (extra libFuzzer
# flags, e.g. "-jobs=4 -workers=4").
set -u
cd "$(dirname "$0")/.." || exit 2

duration=${1:-60}
case $duration in
    '' | *[!0-9]*) echo "usage: bash fuzz/run.sh [SECONDS]" >&2; exit 2 ;;
esac
cxx=${CLANGXX:-clang++}
out=build/fuzz
targets=(request chunked range multipart urlencoded)
per_target=$((duration / ${#targets[@]})) # SECONDS split evenly
[ "$per_target" -ge 1 ] || per_target=1
mkdir -p "$out/artifacts"

if ! command -v "$cxx" >/dev/null 2>&1; then
    echo "fuzz: $cxx not found (libFuzzer needs clang; apt-get install clang)" >&2
    exit 2
fi

# ---- build ----
for t in "${targets[@]}"; do
    bin=$out/fuzz_$t
    echo "== build $bin"
    if ! "$cxx" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
        "fuzz/fuzz_$t.cpp" -o "$bin"; then
        echo "fuzz: build of fuzz/fuzz_$t.cpp failed" >&2
        exit 2
    fi
done

# UBSan reports are fatal (halt_on_error) so libFuzzer keeps the input.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

# ---- run ----
status=0
summary=()
for t in "${targets[@]}"; do
    bin=$out/fuzz_$t
    corpus=$out/corpus/$t
    log=$out/fuzz_$t.log
    mkdir -p "$corpus"
    cp fuzz/corpus/"$t"/* "$corpus"/
    dict=()
    [ -f "fuzz/$t.dict" ] && dict=("-dict=fuzz/$t.dict")
    echo "== run $bin for ${per_target}s (corpus $corpus, log $log)"
    marker=$out/.started_$t
    : >"$marker"
    # shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
    "$bin" "$corpus" "${dict[@]}" \
        -max_total_time="$per_target" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/artifacts/${t}-" -print_final_stats=1 \
        ${FUZZ_FLAGS:-} >"$log" 2>&1
    rc=$?
    # Reproducers written during this run (also catches -fork/-ignore_crashes
    # runs, which can exit 0 after finding crashes).
    new_artifacts=$(find "$out/artifacts" -type f -name "${t}-*" -newer "$marker" | sort)
    [ -n "$new_artifacts" ] && [ "$rc" -eq 0 ] && rc=1
    # Last status line: "#N DONE cov: C ft: F corp: K/S lim: L exec/s: E rss: R"
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    # (-fork mode prints "#N: cov: C ft: F corp: K exec/s E ..." and no stat:: lines)
    [ -n "$execs" ] || execs=$(printf '%s\n' "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
    [ -n "$eps" ] || eps=$(printf '%s\n' "$last" | sed -n 's/.* exec\/s:* \([0-9]*\).*/\1/p')
    cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
    line="fuzz_$t: ${execs:-?} execs, ${eps:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
    if [ "$rc" -ne 0 ]; then
        status=1
        # libFuzzer names the reproducer in "Test unit written to PATH".
        repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        kind=$(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer): [a-zA-Z0-9_ -]+|runtime error: .*|INVARIANT VIOLATED at [^ ]+' "$log" | head -n 1)
        line="$line -- FAILED (exit $rc): ${kind:-see log}"
        echo "---- fuzz_$t failed; end of $log:"
        grep -E '==FUZZ==|ERROR|runtime error|SUMMARY|#[0-9]+ in |Test unit written' "$log" | head -n 30
        echo "----"
        if [ -n "$repro" ]; then
            line="$line; reproducer: $repro (replay: $bin $repro)"
        fi
        for a in $new_artifacts; do
            [ "$a" = "$repro" ] || line="$line; also: $a"
        done
    fi
    summary+=("$line")
done

echo "== fuzz summary (${per_target}s per target)"
for l in "${summary[@]}"; do echo "  $l"; done
if [ "$status" -ne 0 ]; then
    echo "== fuzz: FAILED"
else
    echo "== fuzz: OK, no crash, leak or timeout"
fi
exit "$status"
