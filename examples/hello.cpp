// hello: the QUICK START of graceful_http.hpp -- one route, a drain delay, exit on SIGINT/SIGTERM.
// Build: make build/examples/hello   (g++ -std=c++17 -O2 -pthread -I. examples/hello.cpp)
// Run:   build/examples/hello; then curl http://127.0.0.1:8080/ and press Ctrl-C to drain
#include "graceful_http.hpp"
#include <cstdio>

int main() {
    graceful_http::Options opt;                    // every field documented
    opt.drain_delay = std::chrono::seconds(5);     // keep serving, report "draining"
    graceful_http::Server srv(opt);
    srv.get("/", [](const graceful_http::Request&, graceful_http::Response& res) {
        res.text("hello, world\n");
    });
    if (auto err = srv.listen("127.0.0.1", 8080)) {         // a value, never exit()
        std::fprintf(stderr, "%s\n", err.message().c_str());
        return 1;
    }
    // Blocks until SIGINT/SIGTERM, drains for up to 10 s, returns only
    // when every connection has ended.
    graceful_http::ShutdownReport r =
        graceful_http::serve_until_signal(srv, std::chrono::seconds(10));
    return r.drained ? 0 : 3;
}
