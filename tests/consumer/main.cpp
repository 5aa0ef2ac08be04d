// A consumer of graceful_http: serves one request to itself over loopback
// and shuts down. Built by tests/consumer/run.sh through find_package,
// add_subdirectory, FetchContent, pkg-config and a plain -I.
#include <graceful_http.hpp>

#include <cstdio>
#include <string>
#include <thread>

int main() {
    graceful_http::Server srv;
    srv.get("/", [](const graceful_http::Request&, graceful_http::Response& res) {
        res.text("consumer ok\n");
    });
    if (auto err = srv.listen("127.0.0.1", 0)) {
        std::fprintf(stderr, "%s\n", err.message().c_str());
        return 1;
    }
    std::thread serving([&] { (void)srv.serve(); });

    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(srv.port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string got;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if (::send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == sizeof req - 1) {
            char buf[1024];
            ssize_t n;
            while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    graceful_http::ShutdownReport r = srv.shutdown(std::chrono::seconds(5));
    serving.join();
    bool ok = got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0 && got.find("\r\n\r\nconsumer ok\n") != std::string::npos;
    std::printf("%s (graceful_http %d.%d.%d, drained=%s)\n", ok ? "consumer ok" : "consumer FAILED",
                GRACEFUL_HTTP_VERSION_MAJOR, GRACEFUL_HTTP_VERSION_MINOR, GRACEFUL_HTTP_VERSION_PATCH,
                r.drained ? "yes" : "no");
    return ok && r.drained ? 0 : 1;
}
