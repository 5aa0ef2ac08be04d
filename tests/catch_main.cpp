// The Catch2 runner's main(), compiled once: every tests/test_*.cpp links to it.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
