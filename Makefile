# graceful_http -- build, test and run. Outputs go under build/.
#   make run     build and start examples/demo_server on 127.0.0.1:8080
#   make test    build and run the test suite (Catch2)
#   make asan    the suite under AddressSanitizer + UBSan
#   make tsan    the suite under ThreadSanitizer
#   make check   -Werror builds with g++ and clang++, -fno-exceptions, two TUs
#   make clean
CXX      ?= g++
CXXFLAGS ?= -O2 -g
WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wconversion
STD      := -std=c++17 -pthread
HDR      := graceful_http.hpp
TESTS    := $(sort $(wildcard tests/test_*.cpp))
EXAMPLES := hello demo_server
TEST_ARGS ?=

.PHONY: all examples test run asan tsan check clean
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

clean:
	rm -rf build
