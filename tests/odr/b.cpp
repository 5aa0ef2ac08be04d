// The second translation unit of the ODR check (see a.cpp).
#include "graceful_http.hpp"

int port_of_b() {
    graceful_http::Server srv;
    return srv.port();
}
