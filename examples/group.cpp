// group: a public and an admin server in one process, drained together by one run_until_signal.
// Build: make build/examples/group   (g++ -std=c++17 -O2 -pthread -I. examples/group.cpp)
// Run:   build/examples/group 8080 9090; then Ctrl-C: both drain in parallel, exit 0 (3 if forced)
#include "graceful_http.hpp"

#include <cstdio>
#include <cstdlib> // atoi
#include <string>

using graceful_http::Request;
using graceful_http::Response;

int main(int argc, char** argv) {
    int public_port = argc > 1 ? std::atoi(argv[1]) : 8080; // 0 picks a free port
    int admin_port = argc > 2 ? std::atoi(argv[2]) : 9090;

    graceful_http::Server pub, admin;
    pub.get("/", [](const Request&, Response& res) { res.text("hello, world\n"); });
    admin.get("/stats", [&pub](const Request&, Response& res) {
        graceful_http::Stats s = pub.stats();
        res.text("active_connections " + std::to_string(s.active_connections) +
                 "\nactive_requests " + std::to_string(s.active_requests) + "\nrequests_total " +
                 std::to_string(s.requests_total) + "\n");
    });

    // Either bind failing is a startup failure: say which, exit 1. The
    // other server never serves; its destructor closes its listener.
    if (auto err = pub.listen("127.0.0.1", public_port)) {
        std::fprintf(stderr, "group: %s\n", err.message().c_str());
        return 1;
    }
    if (auto err = admin.listen("127.0.0.1", admin_port)) {
        std::fprintf(stderr, "group: %s\n", err.message().c_str());
        return 1;
    }
    std::printf("public listening on %s\nadmin listening on %s\n", pub.url().c_str(),
                admin.url().c_str());
    std::fflush(stdout);

    // SIGINT/SIGTERM, or either server failing, drains both at once; the
    // call returns when both are done (the longest drain, not the sum).
    graceful_http::RunOptions run;
    run.grace = std::chrono::seconds(10);
    graceful_http::GroupReport g = graceful_http::run_until_signal({&pub, &admin}, run);
    if (g.error) {
        std::fprintf(stderr, "group: %s\n", g.error.message().c_str());
        return 1;
    }
    std::fprintf(stderr, "group: public drained=%s, admin drained=%s\n",
                 g.reports[0].drained ? "yes" : "no", g.reports[1].drained ? "yes" : "no");
    return g.drained() ? 0 : 3;
}
