#!/usr/bin/env bash
# Builds tests/consumer/main.cpp against graceful_http every way a user
# can, and runs each result (it serves itself one request):
#   install      cmake --install to a temporary prefix (header, CMake package, .pc)
#   find_package find_package(graceful_http 0.1 CONFIG) from that prefix
#   version      find_package(graceful_http 99.0) must fail
#   add_subdirectory, fetchcontent (from a tarball of this tree)
#   pkg-config   c++ main.cpp $(pkg-config --cflags --libs graceful_http)
#   plain-I      c++ -std=c++17 -pthread -I<repo> main.cpp
# Usage: tests/consumer/run.sh [BUILD_DIR]   (default build/consumer)
# Ends with "N passed, M failed"; exits non-zero when anything failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build/consumer}
case $out in /*) ;; *) out=$PWD/$out ;; esac
rm -rf "$out" && mkdir -p "$out"
prefix=$out/prefix
cxx=${CXX:-c++}
jobs=$(nproc 2>/dev/null || echo 2)
pass=0 fail=0

# step NAME COMMAND...: runs COMMAND with its output in $out/NAME.log.
step() {
  local name=$1; shift
  if "$@" >"$out/$name.log" 2>&1; then
    echo "consumer: $name: ok$(grep -h '^consumer ok' "$out/$name.log" | sed 's/^consumer ok/:/')"
    pass=$((pass + 1))
  else
    echo "consumer: $name: FAILED (log: $out/$name.log)"
    tail -n 20 "$out/$name.log" | sed 's/^/    /'
    fail=$((fail + 1))
  fi
}

cmake_consumer() { # cmake_consumer DIR BUILD ARGS...: configure, build, run
  local src=$1 build=$2; shift 2
  cmake -S "$src" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" "$@" &&
    cmake --build "$build" -j "$jobs" && "$build/consumer"
}

install_package() {
  cmake -S "$root" -B "$out/lib" -DCMAKE_INSTALL_PREFIX="$prefix" &&
    cmake --build "$out/lib" && cmake --install "$out/lib" &&
    for f in include/graceful_http.hpp share/pkgconfig/graceful_http.pc \
             share/cmake/graceful_http/graceful_httpConfig.cmake \
             share/cmake/graceful_http/graceful_httpConfigVersion.cmake \
             share/cmake/graceful_http/graceful_httpTargets.cmake; do
      test -f "$prefix/$f" || { echo "missing $prefix/$f"; return 1; }
    done
}

wrong_version_fails() {
  ! cmake -S "$here/find_package" -B "$out/version" -DCMAKE_PREFIX_PATH="$prefix" \
      -DGRACEFUL_HTTP_WANT=99.0
}

fetch() {
  tar -czf "$out/graceful_http-src.tar.gz" -C "$root" --transform 's,^,graceful_http/,' \
      CMakeLists.txt cmake graceful_http.hpp graceful_http.pc.in &&
    cmake_consumer "$here/fetchcontent" "$out/fetchcontent" \
      -DGRACEFUL_HTTP_URL="$out/graceful_http-src.tar.gz"
}

with_pkg_config() {
  local flags version
  export PKG_CONFIG_PATH="$prefix/share/pkgconfig"
  version=$(pkg-config --modversion graceful_http) && echo "pkg-config version $version" &&
    flags=$(pkg-config --cflags --libs graceful_http) && echo "flags: $flags" &&
    $cxx -std=c++17 "$here/main.cpp" $flags -o "$out/pkg-config-consumer" &&
    "$out/pkg-config-consumer"
}

plain_include() {
  $cxx -std=c++17 -pthread -I"$root" "$here/main.cpp" -o "$out/plain-consumer" &&
    "$out/plain-consumer"
}

step install install_package
step find_package cmake_consumer "$here/find_package" "$out/find_package" -DCMAKE_PREFIX_PATH="$prefix"
step version wrong_version_fails
step add_subdirectory cmake_consumer "$here/add_subdirectory" "$out/add_subdirectory" \
  -DGRACEFUL_HTTP_DIR="$root"
step fetchcontent fetch
step pkg-config with_pkg_config
step plain-I plain_include

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
