// Process-level tests of build/examples/demo_server against its contract
// (demo-server.md): routes, the drain on SIGTERM/SIGINT, forced close,
// exit codes, startup failures and the summary line. Real processes and
// sockets only.
//
// Readiness without sleeps: a request counts as "in flight" once the
// kernel shows that the server has read every byte of it (/proc/net/tcp:
// the client's send queue is acknowledged and the server-side socket's
// receive queue is empty). That needs no extra connection, so the drain
// counters in the summary line stay exact. "The drain is under way" is
// seen the same way: the listening socket is gone from /proc/net/tcp.
#include <catch2/catch.hpp>

#include "support.hpp"

#include <algorithm>
#include <cstdio>
#include <regex>
#include <string>
#include <vector>

namespace {

using support::Client;
using support::Clock;
using support::Demo;
using support::elapsed_ms;
using support::eventually;
using support::ms;
using support::Outcome;
using support::slack;
using std::string;

// One IPv4 socket of this network namespace, as /proc/net/tcp lists it.
struct TcpRow {
    unsigned local_port = 0, remote_port = 0, state = 0, tx_queue = 0, rx_queue = 0;
};
constexpr unsigned kEstablished = 0x01, kListen = 0x0A;

std::vector<TcpRow> tcp_rows() {
    std::vector<TcpRow> rows;
    FILE* f = std::fopen("/proc/net/tcp", "r");
    if (!f) FAIL("cannot read /proc/net/tcp, which these tests use to see readiness");
    char line[512];
    if (std::fgets(line, sizeof line, f)) { // column titles
        while (std::fgets(line, sizeof line, f)) {
            TcpRow r;
            if (std::sscanf(line, " %*u: %*X:%X %*X:%X %X %X:%X", &r.local_port, &r.remote_port,
                            &r.state, &r.tx_queue, &r.rx_queue) == 5)
                rows.push_back(r);
        }
    }
    std::fclose(f);
    return rows;
}

unsigned local_port(const Client& c) {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (getsockname(c.fd(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
    return ntohs(reinterpret_cast<sockaddr_in*>(&a)->sin_port);
}

// request_read: the server has read every byte this client sent (the
// client's bytes are acknowledged and the server side's receive queue is
// empty), so the request is the server's, not the kernel's.
// All clients are checked against one scan of /proc/net/tcp: on a busy
// machine the table holds many thousands of rows, and a scan per client
// made the check itself slower than the requests it waits for.
bool requests_read(const std::vector<const Client*>& cs, int server_port) {
    unsigned sp = static_cast<unsigned>(server_port);
    std::vector<unsigned> lps;
    for (const Client* c : cs) lps.push_back(local_port(*c));
    std::vector<char> acked(cs.size(), 0), read(cs.size(), 0);
    for (const TcpRow& r : tcp_rows()) {
        for (size_t i = 0; i < lps.size(); ++i) {
            if (r.local_port == lps[i] && r.remote_port == sp && r.state == kEstablished)
                acked[i] = r.tx_queue == 0;
            if (r.local_port == sp && r.remote_port == lps[i] && r.state == kEstablished)
                read[i] = r.rx_queue == 0;
        }
    }
    for (size_t i = 0; i < lps.size(); ++i)
        if (!acked[i] || !read[i]) return false;
    return true;
}

bool request_read(const Client& c, int server_port) { return requests_read({&c}, server_port); }

bool listener_open(int port) {
    for (const TcpRow& r : tcp_rows())
        if (r.local_port == static_cast<unsigned>(port) && r.state == kListen) return true;
    return false;
}

// send_get opens a keep-alive connection and sends one GET on it.
Client send_get(int port, const string& target, const char* host = "127.0.0.1") {
    Client c;
    REQUIRE(c.connect(port, host));
    REQUIRE(c.send("GET " + target + " HTTP/1.1\r\nHost: test\r\n\r\n"));
    return c;
}

// summary returns the one "demo_server: shutdown ..." line on stderr
// (call after exit); a second such line, or none, fails the test.
string summary(Demo& d) {
    string err = d.stderr_text();
    std::vector<string> lines;
    for (size_t pos = 0, end; pos < err.size(); pos = end + 1) {
        end = err.find('\n', pos);
        if (end == string::npos) end = err.size();
        if (err.compare(pos, 22, "demo_server: shutdown ") == 0)
            lines.push_back(err.substr(pos, end - pos));
    }
    INFO("stderr: " << err);
    CHECK(lines.size() == 1);
    return lines.size() == 1 ? lines[0] : string();
}

// field returns the value of key=value in a summary line, or "".
string field(const string& line, const string& key) {
    size_t p = line.find(" " + key + "=");
    if (p == string::npos) return "";
    p += key.size() + 2;
    return line.substr(p, line.find(' ', p) - p);
}

// metric returns a sample's value from Prometheus text, or -1.
long metric(const string& text, const string& name) {
    size_t p = text.find("\n" + name + " ");
    return p == string::npos ? -1 : std::atol(text.c_str() + p + name.size() + 2);
}

long ms_between(Clock::time_point from, Clock::time_point to) {
    return static_cast<long>(std::chrono::duration_cast<ms>(to - from).count());
}

bool starts_with(const string& s, const string& prefix) { return s.rfind(prefix, 0) == 0; }

} // namespace

TEST_CASE("demo #1: GET / says hello as text/plain; HEAD has its headers and no body", "[demo]") {
    Demo d({"--port", "0"});
    REQUIRE(d.port() > 0);
    CHECK(d.first_line() == "listening on http://127.0.0.1:" + std::to_string(d.port()));

    support::Response r = support::get(d.port(), "/");
    CHECK(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(r.body == "hello, world\n");
    CHECK(starts_with(r.header("Content-Type"), "text/plain"));

    // HEAD, then GET on the same connection: any body bytes after the HEAD
    // head would garble the second response's status line.
    Client c;
    REQUIRE(c.connect(d.port()));
    REQUIRE(c.send("HEAD / HTTP/1.1\r\nHost: test\r\n\r\n"));
    support::Response h = c.read_response(slack(), /*head_only=*/true);
    CHECK(h.outcome == Outcome::ok);
    CHECK(h.status == 200);
    CHECK(h.header("Content-Type") == r.header("Content-Type"));
    CHECK(h.header("Content-Length") == "13");
    REQUIRE(c.send("GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"));
    support::Response g = c.read_response();
    CHECK(g.status == 200);
    CHECK(g.body == "hello, world\n");
    c.close(); // as a real client does after `Connection: close` (else the server lingers)

    d.signal(SIGTERM);
    CHECK(d.wait_exit() == 0);
}

TEST_CASE("demo #2: POST /echo returns Content-Length and chunked bodies verbatim", "[demo]") {
    Demo d({"--port", "0"});
    REQUIRE(d.port() > 0);

    const string binary("a\0b\r\n\xff z", 8);
    support::Response r = support::request(d.port(), "POST", "/echo", binary,
                                           "Content-Type: application/x-test\r\n");
    CHECK(r.status == 200);
    CHECK(r.body == binary);
    CHECK(r.header("Content-Type") == "application/x-test");

    r = support::request(d.port(), "POST", "/echo", "no type");
    CHECK(r.status == 200);
    CHECK(r.body == "no type");
    CHECK(r.header("Content-Type") == "application/octet-stream");

    r = support::request(d.port(), "POST", "/echo", "");
    CHECK(r.status == 200);
    CHECK(r.body.empty());

    Client c;
    REQUIRE(c.connect(d.port()));
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
                   "Content-Type: text/csv\r\nConnection: close\r\n\r\n"
                   "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"));
    support::Response ch = c.read_response();
    CHECK(ch.outcome == Outcome::ok);
    CHECK(ch.status == 200);
    CHECK(ch.body == "hello, world");
    CHECK(ch.header("Content-Type") == "text/csv");
    c.close();

    d.signal(SIGTERM);
    CHECK(d.wait_exit() == 0);
}

TEST_CASE("demo #3: unknown path is 404, wrong method 405 with Allow, /healthz 200", "[demo]") {
    Demo d({"--port", "0"});
    REQUIRE(d.port() > 0);

    CHECK(support::get(d.port(), "/no/such/path").status == 404);
    support::Response r = support::request(d.port(), "DELETE", "/");
    CHECK(r.status == 405);
    CHECK(r.header("Allow").find("GET") != string::npos);
    r = support::get(d.port(), "/echo");
    CHECK(r.status == 405);
    CHECK(r.header("Allow").find("POST") != string::npos);
    r = support::get(d.port(), "/healthz");
    CHECK(r.status == 200);
    CHECK(r.body == "ok\n");

    d.signal(SIGTERM);
    CHECK(d.wait_exit() == 0);
}

TEST_CASE("demo #4: /sleep and /stream validate their parameters; /metrics is Prometheus text",
          "[demo]") {
    Demo d({"--port", "0"});
    REQUIRE(d.port() > 0);
    const int port = d.port();

    support::Response r = support::get(port, "/sleep?ms=0");
    CHECK(r.status == 200);
    CHECK(r.body == "slept 0 ms\n");
    auto t0 = Clock::now();
    r = support::get(port, "/sleep?ms=60");
    CHECK(r.body == "slept 60 ms\n");
    CHECK(elapsed_ms(t0) >= 60);
    for (const char* bad : {"/sleep", "/sleep?ms=", "/sleep?ms=-1", "/sleep?ms=60001",
                            "/sleep?ms=1x", "/stream?chunks=3", "/stream?chunks=x&interval_ms=1"}) {
        INFO(bad);
        CHECK(support::get(port, bad).status == 400);
    }

    r = support::get(port, "/stream?chunks=3&interval_ms=5");
    CHECK(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(r.chunked);
    CHECK(r.body == "chunk 0\nchunk 1\nchunk 2\n");

    r = support::get(port, "/metrics");
    CHECK(r.status == 200);
    CHECK(starts_with(r.header("Content-Type"), "text/plain; version=0.0.4"));
    const std::pair<const char*, const char*> metrics[] = {
        {"active_connections", "gauge"},
        {"active_requests", "gauge"},
        {"connections_total", "counter"},
        {"requests_total", "counter"},
        {"drain_served_from_backlog_total", "counter"},
        {"drain_served_with_close_total", "counter"},
        {"drain_idle_closed_total", "counter"},
        {"drain_silent_closed_total", "counter"},
        {"drain_connections_forced_total", "counter"},
    };
    for (auto& m : metrics) {
        string name = string("graceful_http_") + m.first;
        INFO(name << " in\n" << r.body);
        CHECK(r.body.find("# HELP " + name + " ") != string::npos);
        CHECK(r.body.find("# TYPE " + name + " " + m.second + "\n") != string::npos);
        CHECK(metric(r.body, name) >= 0);
    }
    INFO(r.body);
    CHECK(metric(r.body, "graceful_http_requests_total") >= 10); // the requests above
    CHECK(metric(r.body, "graceful_http_connections_total") >= 10);
    CHECK(metric(r.body, "graceful_http_active_connections") >= 1); // this one
    CHECK(metric(r.body, "graceful_http_drain_served_with_close_total") == 0);

    d.signal(SIGTERM);
    CHECK(d.wait_exit() == 0);
}

TEST_CASE("demo #5: five /sleep in flight at SIGTERM all complete, then exit 0 promptly", "[demo]") {
    Demo d({"--port", "0"});
    REQUIRE(d.port() > 0);
    std::vector<Client> clients;
    for (int i = 0; i < 5; ++i) clients.push_back(send_get(d.port(), "/sleep?ms=1500"));
    std::vector<const Client*> all;
    for (const Client& c : clients) all.push_back(&c);
    auto sent_at = Clock::now();
    REQUIRE(eventually([&] { return requests_read(all, d.port()); }));
    // The signal must come while the sleeps are still running, or the
    // test proves nothing: if readiness took that long, say so.
    INFO("the server had read all five requests " << elapsed_ms(sent_at) << " ms after they were sent");
    REQUIRE(elapsed_ms(sent_at) < 1000);

    d.signal(SIGTERM);
    for (Client& c : clients) {
        support::Response r = c.read_response();
        CHECK(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body == "slept 1500 ms\n");
        CHECK(r.closes()); // written after shutdown began
        c.close();         // as a real client does; the server lingers for this EOF
    }
    auto last_response = Clock::now();
    int code = d.wait_exit();
    REQUIRE(code != -1); // exited within slack()
    CHECK(code == 0);
    long lag = ms_between(last_response, d.exit_time());
    INFO("exit came " << lag << " ms after the last response");
    CHECK(lag < 5000);
    string s = summary(d);
    CHECK(field(s, "drained") == "yes");
    CHECK(field(s, "forced") == "0");
    CHECK(field(s, "served_with_close") == "5");
}

TEST_CASE("demo #6: a second SIGTERM during the drain forces the close at once", "[demo]") {
    Demo d({"--port", "0", "--grace-ms", "20000"});
    REQUIRE(d.port() > 0);
    Client c = send_get(d.port(), "/sleep?ms=30000");
    REQUIRE(eventually([&] { return request_read(c, d.port()); }));

    d.signal(SIGTERM);
    // The drain is under way once the listener has closed; the sleep is
    // still in flight for ~30 s.
    REQUIRE(eventually([&] { return !listener_open(d.port()); }));
    auto t_second = Clock::now();
    d.signal(SIGTERM);
    int code = d.wait_exit();
    REQUIRE(code != -1); // exited within slack()
    CHECK(code == 3);
    long took = ms_between(t_second, d.exit_time());
    INFO("exit " << took << " ms after the second SIGTERM (grace 20000 ms)");
    CHECK(took < 3000);
    support::Response r = c.read_response();
    CHECK((r.outcome == Outcome::eof || r.outcome == Outcome::reset));
    string s = summary(d);
    CHECK(field(s, "drained") == "no");
    CHECK(field(s, "forced") == "1");
}

TEST_CASE("demo #7: --grace-ms 500 cuts a /sleep?ms=5000 at the deadline and exits 3", "[demo]") {
    Demo d({"--port", "0", "--grace-ms", "500"});
    REQUIRE(d.port() > 0);
    Client c = send_get(d.port(), "/sleep?ms=5000");
    REQUIRE(eventually([&] { return request_read(c, d.port()); }));

    auto t_signal = Clock::now();
    d.signal(SIGTERM);
    int code = d.wait_exit();
    REQUIRE(code != -1); // exited within slack()
    CHECK(code == 3);
    long took = ms_between(t_signal, d.exit_time());
    INFO("exit " << took << " ms after SIGTERM (grace 500 ms)");
    CHECK(took >= 450);
    CHECK(took < 3000);
    support::Response r = c.read_response();
    CHECK((r.outcome == Outcome::eof || r.outcome == Outcome::reset));
    string s = summary(d);
    CHECK(field(s, "drained") == "no");
    CHECK(field(s, "forced") == "1");
}

TEST_CASE("demo #8: a /stream in flight at SIGTERM ends as a complete chunked body; exit 0",
          "[demo]") {
    Demo d({"--port", "0"});
    REQUIRE(d.port() > 0);
    Client c = send_get(d.port(), "/stream?chunks=1000&interval_ms=200");
    auto deadline = Clock::now() + slack();
    while (c.buffer().find("chunk 0\n") == string::npos) REQUIRE(c.fill(deadline) == Outcome::ok);

    auto t_signal = Clock::now();
    d.signal(SIGTERM);
    support::Response r = c.read_response();
    long took = elapsed_ms(t_signal);
    INFO("stream ended " << took << " ms after SIGTERM; body:\n" << r.body);
    CHECK(r.outcome == Outcome::ok); // the terminating 0-chunk arrived
    CHECK(r.status == 200);
    CHECK(r.chunked);
    string expected;
    int n = 0;
    while (expected.size() < r.body.size() && n < 1000) expected += "chunk " + std::to_string(n++) + "\n";
    CHECK(r.body == expected);
    CHECK(n < 1000);
    CHECK(took < 3000);
    CHECK(c.wait_closed()); // the connection closes after the last byte
    CHECK(d.wait_exit() == 0);
}

TEST_CASE("demo #9: a second demo_server on a busy port exits 1 naming address and error",
          "[demo]") {
    Demo a({"--port", "0"});
    REQUIRE(a.port() > 0);
    Demo b({"--port", std::to_string(a.port())});
    CHECK(b.port() == 0);
    CHECK(b.first_line().empty());
    CHECK(b.wait_exit() == 1); // not 128+SIGABRT: no abort, no core
    string err = b.stderr_text();
    INFO("stderr: " << err);
    CHECK(err.find("127.0.0.1:" + std::to_string(a.port())) != string::npos);
    CHECK(err.find(support::in_use_text()) != string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);

    CHECK(support::get(a.port(), "/").status == 200); // the first one is unharmed
    a.signal(SIGTERM);
    CHECK(a.wait_exit() == 0);
}

TEST_CASE("demo #10: during --drain-delay-ms /healthz says draining and / is served with close",
          "[demo]") {
    const long delay_ms = 1000;
    Demo d({"--port", "0", "--drain-delay-ms", std::to_string(delay_ms)});
    REQUIRE(d.port() > 0);
    const int port = d.port();
    Client idle = send_get(port, "/"); // a keep-alive connection, idle at SIGTERM
    support::Response r = idle.read_response();
    REQUIRE(r.status == 200);
    CHECK_FALSE(r.closes());
    CHECK(support::get(port, "/healthz").status == 200);

    auto t_signal = Clock::now();
    d.signal(SIGTERM);
    support::Response h = support::get(port, "/healthz"); // 200 until the signal is handled
    while (h.status == 200 && elapsed_ms(t_signal) < slack().count()) {
        std::this_thread::sleep_for(ms(2));
        h = support::get(port, "/healthz");
    }
    CHECK(h.status == 503);
    CHECK(h.body == "draining\n");

    REQUIRE(idle.send("GET / HTTP/1.1\r\nHost: test\r\n\r\n"));
    r = idle.read_response();
    CHECK(r.status == 200);
    CHECK(r.body == "hello, world\n");
    CHECK(r.closes());
    CHECK(idle.wait_closed());
    idle.close();
    Client fresh = send_get(port, "/"); // keep-alive request, new connection
    r = fresh.read_response();
    CHECK(r.status == 200);
    CHECK(r.closes());
    fresh.close();
    INFO("served within the delay: " << elapsed_ms(t_signal) << " ms after SIGTERM");
    CHECK(elapsed_ms(t_signal) < delay_ms);

    int code = d.wait_exit();
    REQUIRE(code != -1); // exited within slack()
    CHECK(code == 0);
    long took = ms_between(t_signal, d.exit_time());
    INFO("exit " << took << " ms after SIGTERM (drain delay " << delay_ms << " ms)");
    CHECK(took >= delay_ms - 50); // it kept serving for the whole delay
    CHECK(field(summary(d), "drained") == "yes");
}

TEST_CASE("demo #11: --host ::1 listens on [::1] and serves", "[demo]") {
    if (!support::have_ipv6_loopback()) {
        WARN("no IPv6 loopback (::1) on this machine: skipped");
        return;
    }
    Demo d({"--host", "::1", "--port", "0"});
    REQUIRE(d.port() > 0);
    CHECK(d.first_line() == "listening on http://[::1]:" + std::to_string(d.port()));
    Client c = send_get(d.port(), "/", "::1");
    support::Response r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.body == "hello, world\n");
    d.signal(SIGTERM);
    CHECK(d.wait_exit() == 0);
}

TEST_CASE("demo #12: exactly one summary line on stderr, with the drain counters", "[demo]") {
    Demo d({"--port", "0"});
    REQUIRE(d.port() > 0);
    Client idle = send_get(d.port(), "/");
    REQUIRE(idle.read_response().status == 200);
    Client busy = send_get(d.port(), "/sleep?ms=2000");
    REQUIRE(eventually([&] { return request_read(busy, d.port()); }));

    auto t_signal = Clock::now();
    d.signal(SIGTERM);
    CHECK(idle.wait_closed()); // idle keep-alive: closed at once
    CHECK_FALSE(idle.last_was_reset());
    idle.close();
    support::Response r = busy.read_response();
    CHECK(r.status == 200);
    CHECK(r.closes());
    busy.close();
    int code = d.wait_exit();
    REQUIRE(code != -1); // exited within slack()
    CHECK(code == 0);
    long took = ms_between(t_signal, d.exit_time());

    string s = summary(d);
    INFO("summary: " << s << "\nexit " << took << " ms after SIGTERM");
    CHECK(std::regex_match(s, std::regex("demo_server: shutdown drained=yes elapsed_ms=[0-9]+ forced=0 "
                                         "served_from_backlog=0 served_with_close=1 idle_closed=1 "
                                         "silent_closed=0")));
    CHECK(std::atol(field(s, "elapsed_ms").c_str()) <= took);
}

TEST_CASE("demo #13: SIGINT drains like SIGTERM", "[demo]") {
    Demo d({"--port", "0"});
    REQUIRE(d.port() > 0);
    Client c = send_get(d.port(), "/sleep?ms=1000");
    REQUIRE(eventually([&] { return request_read(c, d.port()); }));
    d.signal(SIGINT);
    REQUIRE(eventually([&] { return !listener_open(d.port()); })); // drain under way
    support::Response r = c.read_response();
    CHECK(r.status == 200);
    CHECK(r.body == "slept 1000 ms\n");
    CHECK(r.closes());
    c.close();
    CHECK(d.wait_exit() == 0);
    string s = summary(d);
    CHECK(field(s, "drained") == "yes");
    CHECK(field(s, "served_with_close") == "1");
}

TEST_CASE("demo #14: a bad flag or value prints usage on stderr and exits 2", "[demo]") {
    const std::vector<std::vector<string>> cases = {
        {"--bogus", "1"},      {"--port"},           {"--port", "abc"},
        {"--port", "70000"},   {"--port", "-1"},     {"--grace-ms", "-1"},
        {"--grace-ms", "1.5"}, {"--host", ""},       {"--max-connections", "1x"},
        {"--port", "0", "stray"},
    };
    for (const auto& args : cases) {
        string joined;
        for (const string& a : args) joined += "'" + a + "' ";
        INFO("args: " << joined);
        Demo d(args);
        CHECK(d.port() == 0);
        CHECK(d.wait_exit() == 2);
        CHECK(d.stderr_text().find("usage: demo_server") != string::npos);
    }
}

TEST_CASE("demo #15: --max-connections 1 keeps a second client waiting instead of refusing it",
          "[demo]") {
    Demo d({"--port", "0", "--max-connections", "1"});
    REQUIRE(d.port() > 0);
    Client first = send_get(d.port(), "/");
    REQUIRE(first.read_response().status == 200); // keep-alive: holds the only slot
    Client second = send_get(d.port(), "/");       // connects: waits in the backlog
    CHECK(second.read_response(ms(300)).outcome == Outcome::timeout);
    first.close();
    support::Response r = second.read_response();
    CHECK(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    d.signal(SIGTERM);
    CHECK(d.wait_exit() == 0);
}
