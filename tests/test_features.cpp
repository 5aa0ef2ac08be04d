// Addresses (Unix sockets, IPv6 dual-stack), connection takeover, limits
// (max_connections, write_timeout) and setup errors, over real sockets.
#include <catch2/catch.hpp>

#include "support.hpp"

#include <atomic>
#include <sys/un.h>
#if defined(__linux__)
#include <linux/filter.h>
#endif

using namespace std::chrono_literals;
using graceful_http::Options;
using graceful_http::Request;
using graceful_http::Response;
using graceful_http::Server;
using support::Client;
using support::Outcome;

namespace {

int connect_unix(const std::string& path) {
    int fd = graceful_http::detail::socket_cloexec(AF_UNIX, SOCK_STREAM, false);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), path.size());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

} // namespace

TEST_CASE("address: a Unix domain socket serves, and its file is removed at shutdown",
          "[features]") {
    std::string path = "/tmp/graceful_http_test_" + std::to_string(getpid()) + ".sock";
    ::unlink(path.c_str());
    Server srv;
    srv.get("/", [](const Request&, Response& res) { res.text("over unix\n"); });
    REQUIRE_FALSE(srv.listen_unix(path));
    CHECK(srv.url() == "unix:" + path);
    {
        support::Running run(srv);
        int fd = connect_unix(path);
        REQUIRE(fd >= 0);
        std::string req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
        std::string got;
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
        ::close(fd);
        CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
        CHECK(got.find("\r\n\r\nover unix\n") != std::string::npos);
        auto report = srv.shutdown(support::slack());
        CHECK(report.drained);
        REQUIRE(run.wait_done());
    }
    CHECK(::access(path.c_str(), F_OK) != 0); // removed
    // A path that exists is an error naming it, like Go.
    int f = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ::close(f);
    Server other;
    graceful_http::Error err = other.listen_unix(path);
    REQUIRE(err);
    CHECK(err.message().find("unix:" + path) != std::string::npos);
    CHECK(err.message().find(support::in_use_text()) != std::string::npos);
    ::unlink(path.c_str());
}

TEST_CASE("address: \"::\" is dual-stack, \"::1\" serves IPv6", "[features]") {
    if (!support::have_ipv6_loopback()) {
        WARN("no IPv6 loopback on this machine: skipped");
        return;
    }
    Server srv;
    srv.get("/", [](const Request&, Response& res) { res.text("hi\n"); });
    REQUIRE_FALSE(srv.listen("::", 0));
    support::Running run(srv);
    Client v4, v6;
    REQUIRE(v4.connect(srv.port(), "127.0.0.1"));
    REQUIRE(v6.connect(srv.port(), "::1"));
    for (Client* c : {&v4, &v6}) {
        REQUIRE(c->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        auto r = c->read_response();
        CHECK(r.outcome == Outcome::ok);
        CHECK(r.body == "hi\n");
    }
    Server s6;
    REQUIRE_FALSE(s6.listen("::1", 0));
    CHECK(s6.url() == "http://[::1]:" + std::to_string(s6.port()));
}

TEST_CASE("takeover: an upgraded connection is the handler's, counted and told of shutdown",
          "[features]") {
    Server srv;
    std::atomic<bool> saw_shutdown{false};
    support::Gate echoed;
    srv.get("/ws", [&](const Request& req, Response& res) {
        res.status = 101;
        res.set_header("Connection", "Upgrade");
        res.set_header("Upgrade", "echo");
        Response::TakenOver t = res.take_over();
        if (t.fd < 0) return;
        std::string pending = t.buffered;
        // A toy protocol: echo lines until shutdown, then say "bye".
        while (!req.shutdown_requested()) {
            if (!pending.empty()) {
                ::send(t.fd, pending.data(), pending.size(), MSG_NOSIGNAL);
                pending.clear();
                echoed.arrive();
            }
            pollfd p{t.fd, POLLIN, 0};
            if (::poll(&p, 1, 20) > 0) {
                char buf[256];
                ssize_t n = ::recv(t.fd, buf, sizeof buf, 0);
                if (n <= 0) return;
                pending.append(buf, static_cast<size_t>(n));
            }
        }
        saw_shutdown = true;
        ::send(t.fd, "bye\n", 4, MSG_NOSIGNAL);
    });
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    support::Running run(srv);
    Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nping\n"));
    auto head = c.read_response(support::slack(), true);
    REQUIRE(head.outcome == Outcome::ok);
    CHECK(head.status == 101);
    CHECK(head.header("Upgrade") == "echo");
    CHECK(head.header("Connection") == "Upgrade");
    REQUIRE(echoed.wait_arrived(1));
    CHECK(srv.stats().active_requests == 1);

    graceful_http::ShutdownReport report;
    std::thread stopper([&] { report = srv.shutdown(support::slack()); });
    std::string extra;
    CHECK(c.wait_closed(support::slack(), &extra) == false); // data came before EOF
    CHECK(c.buffer() == "ping\nbye\n");
    stopper.join();
    CHECK(saw_shutdown);
    CHECK(report.drained);
    CHECK(report.connections_forced == 0);
}

TEST_CASE("takeover: a taken-over connection that ignores shutdown is forced at the deadline",
          "[features]") {
    Server srv;
    std::atomic<bool> read_failed{false};
    support::Gate upgraded;
    srv.get("/ws", [&](const Request&, Response& res) {
        res.status = 101;
        res.set_header("Connection", "Upgrade");
        Response::TakenOver t = res.take_over();
        upgraded.arrive();
        // Blocks reading until the peer speaks or the socket is shut down.
        pollfd p{t.fd, POLLIN, 0};
        ::poll(&p, 1, 60000);
        char b;
        read_failed = ::recv(t.fd, &b, 1, 0) <= 0;
    });
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    support::Running run(srv);
    Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(upgraded.wait_arrived(1));
    auto start = support::Clock::now();
    auto report = srv.shutdown(300ms);
    CHECK_FALSE(report.drained);
    CHECK(report.connections_forced == 1);
    CHECK(support::elapsed_ms(start) >= 250);
    CHECK(support::elapsed_ms(start) < 10000);
    CHECK(read_failed);
}

TEST_CASE("limits: at max_connections new clients wait in the backlog, then are served",
          "[features]") {
    Options opt;
    opt.max_connections = 2;
    Server srv(opt);
    support::Gate gate;
    srv.get("/hold", [&](const Request&, Response& res) {
        gate.arrive();
        gate.wait();
        res.text("held\n");
    });
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    support::Running run(srv);
    std::vector<support::Response> got(3);
    std::vector<std::thread> clients;
    for (int i = 0; i < 2; ++i)
        clients.emplace_back([&, i] { got[static_cast<size_t>(i)] = support::get(srv.port(), "/hold"); });
    REQUIRE(gate.wait_arrived(2));
    // The third connects (the kernel completes the handshake) but is not
    // accepted: its handler cannot run while two connections are live.
    Client third;
    REQUIRE(third.connect(srv.port()));
    REQUIRE(third.send("GET /hold HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    auto early = third.read_response(300ms);
    CHECK(early.outcome == Outcome::timeout);
    CHECK(gate.arrived() == 2);
    CHECK(srv.stats().active_connections == 2);
    gate.open();
    auto r = third.read_response();
    CHECK(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    for (auto& t : clients) t.join();
    for (auto& g : got) {
        if (&g == &got[2]) break;
        CHECK(g.outcome == Outcome::ok);
    }
}

TEST_CASE("limits: write_timeout frees a stream whose client stopped reading", "[features]") {
    Options opt;
    opt.write_timeout = 300ms;
    Server srv(opt);
    std::atomic<bool> write_failed{false};
    support::Gate finished;
    srv.get("/flood", [&](const Request&, Response& res) {
        std::string block(64 * 1024, 'x');
        for (int i = 0; i < 100000; ++i)
            if (!res.write(block)) {
                write_failed = true;
                break;
            }
        finished.arrive();
    });
    srv.get("/", [](const Request&, Response& res) { res.text("ok\n"); });
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    support::Running run(srv);
    Client c; // sends, then never reads: back-pressure fills the buffers
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send("GET /flood HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(finished.wait_arrived(1));
    CHECK(write_failed);
    auto r = support::get(srv.port(), "/");
    CHECK(r.outcome == Outcome::ok);
    auto report = srv.shutdown(support::slack());
    CHECK(report.drained);
}

TEST_CASE("setup: errors are values that name what is wrong", "[features]") {
    SECTION("serve before listen") {
        Server srv;
        graceful_http::Error e = srv.serve();
        REQUIRE(e);
        CHECK(e.message().find("not listening") != std::string::npos);
    }
    SECTION("listen twice") {
        Server srv;
        REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
        graceful_http::Error e = srv.listen("127.0.0.1", 0);
        REQUIRE(e);
        CHECK(e.message().find("already listening") != std::string::npos);
    }
    SECTION("an invalid option is named") {
        Options opt;
        opt.idle_timeout = 0ms;
        Server srv(opt);
        graceful_http::Error e = srv.listen("127.0.0.1", 0);
        REQUIRE(e);
        CHECK(e.code() == std::errc::invalid_argument);
        CHECK(e.message().find("Options::idle_timeout") != std::string::npos);
    }
    SECTION("an unknown host names the lookup") {
        Server srv;
        graceful_http::Error e = srv.listen("no-such-host.invalid", 0);
        REQUIRE(e);
        CHECK(e.message().find("listen no-such-host.invalid:0") == 0);
    }
    SECTION("listen after shutdown") {
        Server srv;
        (void)srv.shutdown(0ms);
        graceful_http::Error e = srv.listen("127.0.0.1", 0);
        REQUIRE(e);
        CHECK(e.code() == std::errc::operation_canceled);
    }
}

TEST_CASE("limits: read_timeout answers a stalled body with 408 and frees the thread",
          "[features]") {
    Options opt;
    opt.read_timeout = 300ms;
    Server srv(opt);
    std::atomic<bool> body_ok{true};
    srv.post("/echo", [&](const Request& req, Response& res) {
        body_ok = req.body_ok();
        res.text(req.body());
    });
    srv.get("/", [](const Request&, Response& res) { res.text("ok\n"); });
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    support::Running run(srv);
    Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
    auto start = support::Clock::now();
    auto r = c.read_response();
    CHECK(r.outcome == Outcome::ok);
    CHECK(r.status == 408);
    CHECK(r.closes());
    CHECK(support::elapsed_ms(start) >= 250);
    CHECK_FALSE(body_ok);
    CHECK(c.wait_closed());
    CHECK(support::get(srv.port(), "/").status == 200);
}

namespace {
std::string run_command(const std::string& cmd) {
    std::string out;
    if (FILE* f = ::popen(cmd.c_str(), "r")) {
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
        ::pclose(f);
    }
    return out;
}
bool have(const char* tool) {
    return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}
} // namespace

TEST_CASE("interop: curl talks to demo_server (reuse, chunked upload, 100-continue, HEAD)",
          "[features][interop]") {
    if (!have("curl")) {
        WARN("curl not installed: skipped");
        return;
    }
    support::Demo d({"--port", "0"});
    REQUIRE(d.port() > 0);
    std::string base = "http://127.0.0.1:" + std::to_string(d.port());
    std::string v = run_command("timeout 20 curl -sv " + base + "/ " + base + "/healthz 2>&1");
    CHECK(v.find("hello, world") != std::string::npos);
    CHECK(v.find("Re-using existing connection") != std::string::npos);
    std::string up = run_command("printf 'chunked body' | timeout 20 curl -s -H 'Transfer-Encoding: chunked' "
                                 "--data-binary @- " + base + "/echo");
    CHECK(up == "chunked body");
    std::string cont = run_command("timeout 20 curl -sv -H 'Expect: 100-continue' --data-binary "
                                   "'expected' " + base + "/echo 2>&1");
    CHECK(cont.find("< HTTP/1.1 100 Continue") != std::string::npos);
    CHECK(cont.find("expected") != std::string::npos);
    std::string head = run_command("timeout 20 curl -sI " + base + "/");
    CHECK(head.find("HTTP/1.1 200 OK") == 0);
    CHECK(head.find("Content-Length: 13") != std::string::npos);
    d.signal(SIGTERM);
    CHECK(d.wait_exit() == 0);
}

TEST_CASE("interop: python http.client talks to demo_server", "[features][interop]") {
    if (!have("python3")) {
        WARN("python3 not installed: skipped");
        return;
    }
    support::Demo d({"--port", "0"});
    REQUIRE(d.port() > 0);
    std::string script =
        "import http.client,sys\n"
        "c=http.client.HTTPConnection('127.0.0.1'," + std::to_string(d.port()) + ",timeout=10)\n"
        "c.request('GET','/'); r=c.getresponse(); a=r.read(); s1=c.sock\n"
        "c.request('HEAD','/'); r2=c.getresponse(); b=r2.read()\n"
        "c.request('POST','/echo',body=iter([b'one,',b'two']),encode_chunked=True,"
        "headers={'Transfer-Encoding':'chunked'}); r3=c.getresponse(); e=r3.read()\n"
        "print(r.status, a==b'hello, world\\n', c.sock is s1, r2.status, len(b), "
        "r2.getheader('Content-Length'), r3.status, e.decode())\n";
    std::string out = run_command("timeout 20 python3 -c \"$(cat <<'PY'\n" + script + "PY\n)\"");
    CHECK(out == "200 True True 200 0 13 200 one,two\n");
    d.signal(SIGTERM);
    CHECK(d.wait_exit() == 0);
}

TEST_CASE("drain: it sees a handshake under way on its port and waits for it",
          "[features]") {
#if defined(__linux__)
    namespace gh = graceful_http;
    gh::Server srv;
    srv.get("/", [](const gh::Request&, Response& res) { res.text("hi\n"); });
    REQUIRE_FALSE(static_cast<bool>(srv.listen("127.0.0.1", 0)));
    const int port = srv.port();
#if !GRACEFUL_HTTP_PORTABLE
    CHECK(gh::detail::handshakes_in_flight(port) == 0);
#endif

    // A client that drops the server's SYN-ACK: the server side stays in
    // SYN_RECV, a handshake under way, as over a slow network.
    int c = graceful_http::detail::socket_cloexec(AF_INET, SOCK_STREAM, true);
    sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),          // TCP flags
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x02),       // SYN?
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0),                    // drop the SYN-ACK
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffU),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
    REQUIRE(::setsockopt(c, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0);
#if !GRACEFUL_HTTP_PORTABLE
    CHECK(support::eventually([&] { return gh::detail::handshakes_in_flight(port) == 1; }));

    // The drain waits for it (up to kHandshakeGrace), since it could
    // still land in the accept queue; without it the drain is immediate.
    {
        support::Running run(srv);
        gh::ShutdownReport rep = srv.shutdown(support::slack());
        CHECK(rep.drained);
        CHECK(rep.elapsed >= gh::detail::kHandshakeGrace);
    }
#else
    // The portable fallback (no SYN filter, no sock_diag) cannot see the
    // handshake (-1) and does not wait for it: the drain accepts what is
    // queued and closes. The handshake is dropped with the listener, and
    // the client's next SYN is refused -- safe to retry -- not reset.
    CHECK(gh::detail::handshakes_in_flight(port) == -1);
    {
        support::Running run(srv);
        gh::ShutdownReport rep = srv.shutdown(support::slack());
        CHECK(rep.drained);
        CHECK(rep.served_from_backlog == 0);
    }
    pollfd p{c, POLLOUT, 0}; // the SYN retransmission (about 1 s) meets a closed port
    CHECK(::poll(&p, 1, static_cast<int>(support::slack().count())) == 1);
    int err = 0;
    socklen_t err_len = sizeof err;
    REQUIRE(::getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &err_len) == 0);
    CHECK(err == ECONNREFUSED);
#endif
    ::close(c);
#else
    WARN("not Linux: no sock_diag");
#endif
}

TEST_CASE("drain: the handshake filter drops new SYNs but not established connections",
          "[features]") {
#if defined(__linux__)
    // A listener of our own, so the test sees the filter's effect alone.
    int l = graceful_http::detail::socket_cloexec(AF_INET, SOCK_STREAM, false);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(l, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    int port = ntohs(a.sin_port);

    Client before; // completes its handshake before the filter
    REQUIRE(before.connect(port));
#if !GRACEFUL_HTTP_PORTABLE
    REQUIRE(graceful_http::detail::refuse_new_handshakes(l));
#else
    // The portable fallback has no filter and says so: new handshakes
    // still complete and queue, and the drain accepts them until the queue
    // is empty (the reset window between that and close() stays open).
    REQUIRE_FALSE(graceful_http::detail::refuse_new_handshakes(l));
#endif

    int c = graceful_http::detail::socket_cloexec(AF_INET, SOCK_STREAM, true);
    int rc = ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
    REQUIRE(rc != 0);
    REQUIRE(errno == EINPROGRESS);
    pollfd p{c, POLLOUT, 0};
#if !GRACEFUL_HTTP_PORTABLE
    CHECK(::poll(&p, 1, 300) == 0); // the SYN was dropped: no handshake
#else
    CHECK(::poll(&p, 1, static_cast<int>(support::slack().count())) == 1); // it completes
    int first = graceful_http::detail::accept_cloexec(l); // `before`; `c` queues behind it
    CHECK(first >= 0);
    if (first >= 0) ::close(first);
#endif
    ::close(c);

    // The connection that was already established is still in the queue
    // (with the fallback, `c`'s, queued behind it).
    int acc = graceful_http::detail::accept_cloexec(l);
    CHECK(acc >= 0);
    if (acc >= 0) ::close(acc);
    ::close(l);
#else
    WARN("not Linux: the filter is a no-op");
#endif
}
