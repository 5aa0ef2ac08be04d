# graceful_http -- build, test and run. Outputs go under build/.
#   make run     build and start examples/demo_server on 127.0.0.1:8080
#   make test    build and run the test suite (Catch2)
#   make asan    the suite under AddressSanitizer + UBSan
#   make tsan    the suite under ThreadSanitizer
#   make noexc   the suite built with -fno-exceptions
#   make portable       the suite built with -DGRACEFUL_HTTP_PORTABLE=1 (every
#                       non-Linux code path of >>platform, run on Linux)
#   make portable-tsan  the same under ThreadSanitizer
#   make cross   cross-compile checks (macOS x86_64/aarch64, musl) and the
#                suite built for musl and run (tests/cross.sh; Zig from npm)
#   make check   -Werror builds with g++ and clang++, -fno-exceptions, two TUs
#   make fuzz    a bounded libFuzzer run (FUZZ_SECONDS, default 60)
#   make stress  the stress suite (STRESS_ARGS=--sanitizer=tsan|asan)
#   make bench   benchmarks against Go, cpp-httplib and nginx (BENCH_ARGS=--smoke),
#                with the concurrency scenario (bench/concurrency.sh)
#   make install PREFIX=...   header + CMake package + pkg-config file
#   make consumer  consumer projects: find_package, add_subdirectory, FetchContent, -I
#   make clean
CXX      ?= g++
CXXFLAGS ?= -O2 -g
WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wconversion
STD      := -std=c++17 -pthread
HDR      := graceful_http.hpp
TESTS    := $(sort $(wildcard tests/test_*.cpp))
EXAMPLES := hello demo_server group
TEST_ARGS ?=

.PHONY: all examples test run asan tsan noexc portable portable-tsan cross check fuzz stress install consumer ops bench clean
all: examples build/tests/run_tests

# ---- one build flavour: $(1)=dir, $(2)=extra flags ----
define flavour
$(1)/examples/%: examples/%.cpp $(HDR)
	@mkdir -p $$(@D)
	$$(CXX) $$(STD) $$(CXXFLAGS) $(2) $$(WARN) -I. $$< -o $$@

$(1)/tests/catch_main.o: tests/catch_main.cpp
	@mkdir -p $$(@D)
	$$(CXX) $$(STD) $$(CXXFLAGS) $(2) -c $$< -o $$@

$(1)/tests/%.o: tests/%.cpp tests/support.hpp $(HDR)
	@mkdir -p $$(@D)
	$$(CXX) $$(STD) $$(CXXFLAGS) $(2) $$(WARN) -Wno-conversion -I. \
	  -DGRACEFUL_HTTP_DEMO_PATH='"$(1)/examples/demo_server"' -c $$< -o $$@

$(1)/tests/run_tests: $(1)/tests/catch_main.o $(patsubst tests/%.cpp,$(1)/tests/%.o,$(TESTS))
	$$(CXX) $$(STD) $$(CXXFLAGS) $(2) $$^ -o $$@
endef

$(eval $(call flavour,build,))
$(eval $(call flavour,build/asan,-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all))
$(eval $(call flavour,build/tsan,-O1 -fsanitize=thread))
$(eval $(call flavour,build/noexc,-fno-exceptions -DCATCH_CONFIG_DISABLE_EXCEPTIONS))
$(eval $(call flavour,build/portable,-DGRACEFUL_HTTP_PORTABLE=1))
$(eval $(call flavour,build/portable-tsan,-O1 -fsanitize=thread -DGRACEFUL_HTTP_PORTABLE=1))

examples: $(addprefix build/examples/,$(EXAMPLES))

run: build/examples/demo_server
	./build/examples/demo_server --host 127.0.0.1 --port 8080

test: examples build/tests/run_tests
	tests/summary.sh build/tests/run_tests $(TEST_ARGS)

asan: $(addprefix build/asan/examples/,$(EXAMPLES)) build/asan/tests/run_tests
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  tests/summary.sh build/asan/tests/run_tests $(TEST_ARGS)

tsan: $(addprefix build/tsan/examples/,$(EXAMPLES)) build/tsan/tests/run_tests
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  tests/summary.sh build/tsan/tests/run_tests $(TEST_ARGS)

# the suite built and run with -fno-exceptions
noexc: $(addprefix build/noexc/examples/,$(EXAMPLES)) build/noexc/tests/run_tests
	tests/summary.sh build/noexc/tests/run_tests $(TEST_ARGS)

# the suite with every platform fallback forced on (GRACEFUL_HTTP_PORTABLE=1):
# the code paths of macOS and the BSDs, executed and tested here
portable: $(addprefix build/portable/examples/,$(EXAMPLES)) build/portable/tests/run_tests
	tests/summary.sh build/portable/tests/run_tests $(TEST_ARGS)

portable-tsan: $(addprefix build/portable-tsan/examples/,$(EXAMPLES)) build/portable-tsan/tests/run_tests
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  tests/summary.sh build/portable-tsan/tests/run_tests $(TEST_ARGS)

# cross-compile checks; CROSS_ARGS=--link also links the macOS binaries
CROSS_ARGS ?=
cross:
	bash tests/cross.sh $(CROSS_ARGS)

# -Werror with g++ and clang++: the header alone, the examples, two TUs
# linked together (a missing `inline` fails to link), -fno-exceptions;
# then clang-tidy (bugprone, concurrency, performance: see .clang-tidy).
check:
	@mkdir -p build/check
	for cxx in g++ clang++; do \
	  echo '#include "graceful_http.hpp"' | $$cxx $(STD) $(WARN) -Werror -fsyntax-only -I. -x c++ - || exit 1; \
	  $$cxx $(STD) $(WARN) -Werror -I. tests/odr/a.cpp tests/odr/b.cpp -o build/check/odr-$$cxx || exit 1; \
	  ./build/check/odr-$$cxx || exit 1; \
	  for ex in $(EXAMPLES); do \
	    $$cxx $(STD) $(WARN) -Werror -I. examples/$$ex.cpp -o build/check/$$ex-$$cxx || exit 1; \
	    $$cxx $(STD) $(WARN) -Werror -fno-exceptions -I. examples/$$ex.cpp -o build/check/$$ex-noexc-$$cxx || exit 1; \
	  done; \
	done
	clang-tidy --quiet tests/odr/b.cpp -- $(STD) -I.
	@echo "check: ok"

# the stress suite (issue 4): shutdown under load, churn, hostile clients,
# a stuck handler, 10k connections. STRESS_ARGS=--sanitizer=tsan|asan
STRESS_ARGS ?=
stress:
	bash stress/run.sh $(STRESS_ARGS)

# bench: graceful_http against Go net/http, cpp-httplib and nginx (installs
# wrk, golang-go, libcpp-httplib-dev, nginx-light when missing; ~22 min),
# ending with bench/concurrency.sh (keep-alive at 64, 1,000 and 4,000
# connections: req/s, p50, p99, max). BENCH_ARGS=--smoke for a ~2 minute run.
# Results: bench/RESULTS.md.
BENCH_ARGS ?=
bench:
	bash bench/run.sh $(BENCH_ARGS)

PREFIX ?= /usr/local
# install: header, CMake package and graceful_http.pc under $(PREFIX) (DESTDIR honoured)
install:
	cmake -S . -B build/cmake -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --install build/cmake

# consumer: builds against the header via find_package, add_subdirectory,
# FetchContent, pkg-config and plain -I
consumer:
	tests/consumer/run.sh build/consumer

# ops: the [ops] tests, then nginx in front of two demo_servers through
# rolling restarts (installs nginx-light when missing)
ops: examples build/tests/run_tests
	tests/summary.sh build/tests/run_tests '[ops]'
	tests/nginx_rolling.sh

# bounded libFuzzer run over the parser and the chunked decoder
FUZZ_SECONDS ?= 60
fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build
