// Two translation units that both include the header, linked together:
// a missing `inline` becomes a duplicate-symbol link error (make check).
#include "graceful_http.hpp"

int port_of_b();

int main() {
    graceful_http::Server srv;
    srv.get("/", [](const graceful_http::Request&, graceful_http::Response& res) { res.text("a\n"); });
    return (srv.port() == 0 && port_of_b() == 0) ? 0 : 1;
}
