// Shutdown behaviours, in process: SHUTDOWN.md #1-#15 and #20.
//
// A graceful_http::Server runs in this process and clients talk to it over
// real loopback sockets (port 0, then srv.port()). Handlers are held on
// Gates; the tests synchronise on Gates, futures and the library's own
// state (is_shutting_down(), is_draining(), stats()), never on a sleep.
// A sleep appears only to create a situation (for example "the drain has
// been going on for a while"), never to wait for an outcome. Bounds are
// generous (support::slack() and kPrompt) because the suite also runs
// under ThreadSanitizer on a loaded two-core machine; exact timings
// belong in benchmarks.
//
// Catch2 assertions are not thread-safe: handlers and helper threads only
// record what they saw (atomics, Gates, futures); the test thread asserts.
#include <catch2/catch.hpp>

#include "support.hpp"

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <signal.h>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace gh = graceful_http;
using support::Clock;
using support::Gate;
using support::Outcome;
using support::ms;
using support::slack;

// "Promptly": something that should take about a millisecond must take
// less than this (ms). Far above any real figure, far below the timeouts
// that a wrong implementation would fall back to (10 s, 60 s).
constexpr long kPrompt = 2000;
// Tolerance (ms) for comparing the library's timers with our clock.
constexpr long kEarly = 30;

std::string oc(Outcome o) { return support::outcome_name(o); }

long ms_between(Clock::time_point a, Clock::time_point b) {
    return static_cast<long>(std::chrono::duration_cast<ms>(b - a).count());
}

// A keep-alive GET: the client does not ask for Connection: close, so a
// `Connection: close` in the response comes from the server's drain.
std::string get_req(const std::string& path, const std::string& extra = "") {
    return "GET " + path + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

void listen_local(gh::Server& srv) {
    gh::Error err = srv.listen("127.0.0.1", 0);
    INFO("listen: " << err.message());
    REQUIRE_FALSE(static_cast<bool>(err));
    REQUIRE(srv.port() > 0);
}

// Reads until the peer closes. Returns eof (clean FIN), reset, or timeout.
// Bytes that arrive meanwhile stay in c.buffer().
Outcome wait_close(support::Client& c, ms bound = slack()) {
    auto deadline = Clock::now() + bound;
    for (;;) {
        Outcome o = c.fill(deadline);
        if (o != Outcome::ok) return o;
    }
}

// refused: a connect to 127.0.0.1:port is refused. Non-blocking with a
// bound, so a listener that wrongly stays open (its backlog full, SYNs
// dropped) makes this return false instead of hanging in connect().
bool refused(int port) {
    int fd = graceful_http::detail::socket_cloexec(AF_INET, SOCK_STREAM, true);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    bool result = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        if (errno == ECONNREFUSED) {
            result = true;
        } else if (errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            if (::poll(&p, 1, 1000) == 1) {
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                result = err == ECONNREFUSED;
            }
        }
    }
    ::close(fd);
    return result;
}

void wait_shutting_down(gh::Server& srv) {
    REQUIRE(support::eventually([&] { return srv.is_shutting_down(); }));
}

// Runs a report-returning call (srv.shutdown, serve_until_signal) on its
// own thread. If the test ends while the call still runs (a failed
// REQUIRE), srv.close() ends it so the thread can be joined.
class AsyncReport {
public:
    AsyncReport(gh::Server& srv, std::function<gh::ShutdownReport()> fn)
        : srv_(srv), started_(Clock::now()) {
        fut_ = std::async(std::launch::async, [fn] {
            gh::ShutdownReport r = fn();
            return std::make_pair(r, Clock::now());
        });
    }
    // srv.shutdown(timeout) on a thread
    AsyncReport(gh::Server& srv, ms timeout)
        : AsyncReport(srv, [&srv, timeout] { return srv.shutdown(timeout); }) {}
    AsyncReport(const AsyncReport&) = delete;
    AsyncReport& operator=(const AsyncReport&) = delete;
    ~AsyncReport() {
        if (fut_.valid() && !ready(ms(0))) srv_.close();
    }
    bool ready(ms bound) {
        if (!fut_.valid()) return true;
        return fut_.wait_for(bound) == std::future_status::ready;
    }
    bool wait(ms bound = slack()) { return ready(bound); }
    const gh::ShutdownReport& report() {
        fetch();
        return report_;
    }
    Clock::time_point started() const { return started_; }
    Clock::time_point returned() {
        fetch();
        return returned_;
    }
    long returned_after_ms() { return ms_between(started_, returned()); }

private:
    void fetch() {
        if (got_) return;
        auto p = fut_.get();
        report_ = p.first;
        returned_ = p.second;
        got_ = true;
    }
    gh::Server& srv_;
    Clock::time_point started_;
    std::future<std::pair<gh::ShutdownReport, Clock::time_point>> fut_;
    bool got_ = false;
    gh::ShutdownReport report_;
    Clock::time_point returned_;
};

// Opens gates when the test scope ends, so that a failed REQUIRE does
// not leave handlers blocked for the Gate's full bound. Declare it after
// the Running guard (it must run first on the way out).
struct OpenAtExit {
    std::vector<std::shared_ptr<Gate>> gates;
    ~OpenAtExit() {
        for (auto& g : gates) g->open();
    }
};

// serve() on a thread that samples `probe` the instant serve() returns.
class ServeProbe {
public:
    ServeProbe(gh::Server& srv, std::function<bool()> probe) : srv_(srv) {
        th_ = std::thread([this, probe] {
            gh::Error e = srv_.serve();
            bool p = probe();
            std::lock_guard<std::mutex> lk(mu_);
            probe_at_return_ = p;
            done_ = true;
            cv_.notify_all();
        });
    }
    ~ServeProbe() {
        if (!wait_done(ms(0))) (void)srv_.shutdown(ms(0));
        th_.join();
    }
    bool wait_done(ms bound = slack()) {
        std::unique_lock<std::mutex> lk(mu_);
        return cv_.wait_for(lk, bound, [&] { return done_; });
    }
    bool probe_at_return() {
        std::lock_guard<std::mutex> lk(mu_);
        return probe_at_return_;
    }

private:
    gh::Server& srv_;
    std::thread th_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    bool probe_at_return_ = false;
};

// What a handler saw, shared with the test by shared_ptr (a forced
// handler may outlive the test's stack frame).
struct Probe {
    std::atomic<bool> flag_a{false};
    std::atomic<bool> flag_b{false};
    std::atomic<long> at_ms{-1}; // ms since `origin` when something happened
    std::atomic<long> count{0};
    Clock::time_point origin = Clock::now();
    void mark() { at_ms.store(ms_between(origin, Clock::now())); }
};

bool same_report(const gh::ShutdownReport& a, const gh::ShutdownReport& b) {
    return a.drained == b.drained && a.completed == b.completed &&
           a.connections_forced == b.connections_forced && a.elapsed == b.elapsed &&
           a.served_from_backlog == b.served_from_backlog &&
           a.served_with_close == b.served_with_close && a.idle_closed == b.idle_closed &&
           a.silent_closed == b.silent_closed;
}

std::string describe(const gh::ShutdownReport& r) {
    return "drained=" + std::to_string(r.drained) + " completed=" + std::to_string(r.completed) +
           " forced=" + std::to_string(r.connections_forced) +
           " elapsed=" + std::to_string(r.elapsed.count()) +
           "ms backlog=" + std::to_string(r.served_from_backlog) +
           " with_close=" + std::to_string(r.served_with_close) +
           " idle=" + std::to_string(r.idle_closed) + " silent=" + std::to_string(r.silent_closed);
}

// A route that holds its request on `gate` and then answers `text`.
gh::Handler held(std::shared_ptr<Gate> gate, std::string text) {
    return [gate, text](const gh::Request&, gh::Response& res) {
        gate->arrive();
        gate->wait();
        res.text(text);
    };
}

gh::Handler hello() {
    return [](const gh::Request&, gh::Response& res) { res.text("hello"); };
}

bool handler_installed(int sig, const struct sigaction& before) {
    struct sigaction cur {};
    sigaction(sig, nullptr, &cur);
    return cur.sa_handler != before.sa_handler;
}

} // namespace

// ---------------------------------------------------------------------------
// Leak check first, so that it runs before any test that deliberately
// leaves a forced handler thread behind for a moment.
TEST_CASE("shutdown: a full serve/shutdown cycle leaves no fd or thread behind", "[shutdown]") {
    // Runtimes start helper threads with the process's first thread (TSan's
    // background thread): create and join one before taking the baseline.
    std::thread([] {}).join();
    const int fds_before = support::count_fds();
    const int threads_before = support::count_threads();
    int threads_after_serve = -1;
    {
        auto gate = std::make_shared<Gate>();
        gh::Options opt;
        opt.drain_silent_timeout = ms(200);
        gh::Server srv(opt);
        srv.get("/", hello());
        srv.get("/hold", held(gate, "held"));
        listen_local(srv);
        {
            support::Running run(srv);
            OpenAtExit guard{{gate}};

            std::vector<support::Client> idle(3);
            for (auto& c : idle) {
                REQUIRE(c.connect(srv.port()));
                REQUIRE(c.send(get_req("/")));
                REQUIRE(oc(c.read_response().outcome) == "ok");
            }
            for (int i = 0; i < 2; ++i) CHECK(support::get(srv.port(), "/").status == 200);
            support::Client holder;
            REQUIRE(holder.connect(srv.port()));
            REQUIRE(holder.send(get_req("/hold")));
            REQUIRE(gate->wait_arrived(1));
            support::Client silent;
            REQUIRE(silent.connect(srv.port()));
            REQUIRE(support::eventually([&] { return srv.stats().active_connections >= 5; }));

            AsyncReport sd(srv, slack());
            wait_shutting_down(srv);
            gate->open();
            support::Response r = holder.read_response();
            CHECK(oc(r.outcome) == "ok");
            holder.close();
            for (auto& c : idle) CHECK(oc(wait_close(c)) == "eof");
            CHECK(oc(wait_close(silent)) == "eof");
            REQUIRE(sd.wait());
            INFO(describe(sd.report()));
            CHECK(sd.report().drained);
            REQUIRE(run.wait_done());
            run.join();
            // serve() has returned and its thread is joined: the library
            // promises it joins its own threads, so this is exact.
            threads_after_serve = support::count_threads();
        }
    }
    CHECK(threads_after_serve == threads_before);
    CHECK(support::count_threads() == threads_before);
    CHECK(support::count_fds() == fds_before);
}

TEST_CASE("shutdown: listen() then destruction without serve() releases the listener",
          "[shutdown]") {
    const int fds_before = support::count_fds();
    int port = 0;
    {
        gh::Server srv;
        listen_local(srv);
        port = srv.port();
    }
    CHECK(support::count_fds() == fds_before);
    CHECK(refused(port));
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #1: serve() returns only after in-flight requests finish", "[shutdown]") {
    auto gate = std::make_shared<Gate>();
    auto handler_done = std::make_shared<std::atomic<bool>>(false);
    gh::Server srv;
    srv.get("/slow", [gate, handler_done](const gh::Request&, gh::Response& res) {
        gate->arrive();
        gate->wait();
        res.text("slow done");
        handler_done->store(true);
    });
    listen_local(srv);
    ServeProbe serve(srv, [handler_done] { return handler_done->load(); });
    OpenAtExit guard{{gate}};

    support::Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(get_req("/slow")));
    REQUIRE(gate->wait_arrived(1));

    AsyncReport sd(srv, slack());
    wait_shutting_down(srv);
    // Give a wrong serve() (Go's ErrServerClosed at once) the chance to
    // return while the handler is still held.
    CHECK_FALSE(serve.wait_done(ms(300)));
    CHECK_FALSE(sd.ready(ms(0)));

    gate->open();
    support::Response r = c.read_response();
    CHECK(oc(r.outcome) == "ok");
    CHECK(r.status == 200);
    CHECK(r.body == "slow done");
    CHECK(r.closes());
    CHECK(oc(wait_close(c)) == "eof");
    c.close();

    REQUIRE(serve.wait_done());
    CHECK(serve.probe_at_return()); // the handler had finished when serve() returned
    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.report().drained);
    CHECK(sd.report().completed);
    CHECK(sd.report().connections_forced == 0);
    CHECK(sd.report().served_with_close == 1);
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #2: shutdown() returns promptly after the last connection closes",
          "[shutdown]") {
    auto gate = std::make_shared<Gate>();
    gh::Server srv;
    srv.get("/hold", held(gate, "done"));
    listen_local(srv);
    support::Running run(srv);
    OpenAtExit guard{{gate}};

    support::Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(get_req("/hold")));
    REQUIRE(gate->wait_arrived(1));

    AsyncReport sd(srv, slack());
    wait_shutting_down(srv);
    std::this_thread::sleep_for(ms(150)); // situation: the drain lasts a while
    gate->open();
    support::Response r = c.read_response();
    CHECK(oc(r.outcome) == "ok");
    CHECK(oc(wait_close(c)) == "eof"); // server's FIN after its last byte
    Clock::time_point last_closed = Clock::now();
    c.close(); // the last connection ends (the server's lingering read sees EOF)

    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(ms_between(last_closed, sd.returned()) < kPrompt);
    CHECK(sd.report().drained);
    CHECK(sd.report().elapsed.count() >= 150);
    CHECK(sd.report().elapsed.count() <= sd.returned_after_ms() + 1);
    REQUIRE(run.wait_done());
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #3: shutdown() or close() before serve() makes serve() return at once "
          "with operation_canceled",
          "[shutdown]") {
    gh::Server srv;
    srv.get("/", hello());
    listen_local(srv);
    const int port = srv.port();

    SECTION("shutdown() before serve()") {
        AsyncReport sd(srv, slack());
        REQUIRE(sd.wait());
        INFO(describe(sd.report()));
        CHECK(sd.returned_after_ms() < kPrompt);
        CHECK(sd.report().drained);
        CHECK(sd.report().connections_forced == 0);
        CHECK(srv.is_shutting_down());
    }
    SECTION("close() before serve()") {
        srv.close();
        CHECK(srv.is_shutting_down());
    }

    Clock::time_point t0 = Clock::now();
    support::Running run(srv);
    REQUIRE(run.wait_done());
    CHECK(ms_between(t0, Clock::now()) < kPrompt);
    gh::Error err = run.error();
    INFO("serve: " << err.message());
    CHECK(static_cast<bool>(err));
    CHECK(err.code() == std::errc::operation_canceled);
    CHECK_FALSE(err.message().empty());
    // A server that will never serve must not leave connections queued.
    CHECK(refused(port));
    // and later calls are harmless
    srv.close();
    CHECK(srv.shutdown(ms(0)).connections_forced == 0);
}

TEST_CASE("shutdown #3: shutdown() from 8 threads at once returns the same report to all",
          "[shutdown]") {
    auto gate = std::make_shared<Gate>();
    gh::Server srv;
    srv.get("/hold", held(gate, "done"));
    listen_local(srv);
    support::Running run(srv);
    OpenAtExit guard{{gate}};

    support::Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(get_req("/hold")));
    REQUIRE(gate->wait_arrived(1));

    // all 8 calls start together and block in the drain
    auto start = std::make_shared<Gate>();
    std::vector<std::unique_ptr<AsyncReport>> calls;
    for (int i = 0; i < 8; ++i)
        calls.push_back(std::make_unique<AsyncReport>(srv, [&srv, start] {
            start->arrive();
            start->wait();
            return srv.shutdown(slack());
        }));
    REQUIRE(start->wait_arrived(8));
    start->open();
    wait_shutting_down(srv);
    gate->open();
    support::Response r = c.read_response();
    CHECK(oc(r.outcome) == "ok");
    CHECK(r.closes());
    c.close();

    for (auto& call : calls) REQUIRE(call->wait());
    const gh::ShutdownReport first = calls[0]->report();
    INFO(describe(first));
    CHECK(first.drained);
    CHECK(first.completed);
    CHECK(first.served_with_close == 1);
    for (auto& call : calls) {
        INFO("other: " << describe(call->report()));
        CHECK(same_report(call->report(), first));
    }
    // shutdown after shutdown: at once, the same report
    Clock::time_point t0 = Clock::now();
    gh::ShutdownReport again = srv.shutdown(slack());
    CHECK(ms_between(t0, Clock::now()) < kPrompt);
    INFO("again: " << describe(again));
    CHECK(same_report(again, first));
    REQUIRE(run.wait_done());
}

TEST_CASE("shutdown #3: a handler that calls shutdown() still delivers its response",
          "[shutdown]") {
    gh::Server srv;
    auto probe = std::make_shared<Probe>();
    auto report = std::make_shared<gh::ShutdownReport>();
    srv.get("/stop", [&srv, probe, report](const gh::Request&, gh::Response& res) {
        Clock::time_point t0 = Clock::now();
        *report = srv.shutdown(slack()); // starts the drain, returns at once
        probe->count.store(ms_between(t0, Clock::now()));
        probe->flag_a.store(true);
        res.text("stopping");
    });
    listen_local(srv);
    support::Running run(srv);

    support::Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(get_req("/stop")));
    support::Response r = c.read_response();
    CHECK(oc(r.outcome) == "ok");
    CHECK(r.status == 200);
    CHECK(r.body == "stopping");
    CHECK(r.closes());
    CHECK(oc(wait_close(c)) == "eof");
    c.close();
    REQUIRE(probe->flag_a.load()); // the response was written after this store
    CHECK(probe->count.load() < kPrompt);
    INFO("in handler: " << describe(*report));
    CHECK_FALSE(report->completed);

    REQUIRE(run.wait_done());
    // from outside, after the drain: the completed report
    gh::ShutdownReport after = srv.shutdown(slack());
    INFO("after: " << describe(after));
    CHECK(after.completed);
    CHECK(after.drained);
    CHECK(after.served_with_close == 1);
}

TEST_CASE("shutdown #3: a handler that calls close() does not deadlock", "[shutdown]") {
    gh::Server srv;
    auto probe = std::make_shared<Probe>();
    srv.get("/close", [&srv, probe](const gh::Request&, gh::Response& res) {
        srv.close();
        probe->flag_a.store(true);
        res.text("closing");
    });
    listen_local(srv);
    support::Running run(srv);

    support::Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(get_req("/close")));
    // The connection ends (with or without the response: close() is
    // immediate); what matters is that nothing deadlocks.
    Outcome o = wait_close(c);
    CHECK(oc(o) != "timeout");
    REQUIRE(run.wait_done());
    CHECK(probe->flag_a.load());
}

TEST_CASE("shutdown #3: close() any number of times, from any thread, ends a shutdown in "
          "progress; a second shutdown() only shortens the deadline",
          "[shutdown]") {
    auto stuck = std::make_shared<Gate>();
    auto exited = std::make_shared<Gate>();
    gh::Server srv;
    srv.get("/stuck", [stuck, exited](const gh::Request&, gh::Response& res) {
        stuck->arrive();
        stuck->wait(); // ignores shutdown
        res.text("late");
        exited->arrive();
    });
    listen_local(srv);
    support::Running run(srv);
    OpenAtExit guard{{stuck}};

    support::Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(get_req("/stuck")));
    REQUIRE(stuck->wait_arrived(1));

    SECTION("a shorter second deadline applies to both calls") {
        AsyncReport longer(srv, ms(30000));
        wait_shutting_down(srv);
        Clock::time_point t0 = Clock::now();
        gh::ShutdownReport shorter = srv.shutdown(ms(300));
        CHECK(ms_between(t0, Clock::now()) < 300 + kPrompt);
        REQUIRE(longer.wait());
        INFO("shorter: " << describe(shorter) << "; longer: " << describe(longer.report()));
        CHECK(longer.returned_after_ms() < 300 + kPrompt + kPrompt);
        CHECK_FALSE(shorter.drained);
        CHECK(shorter.connections_forced == 1);
        CHECK(same_report(shorter, longer.report()));
    }
    SECTION("a longer second deadline does not extend the first") {
        AsyncReport first(srv, ms(300));
        wait_shutting_down(srv);
        AsyncReport second(srv, ms(30000));
        REQUIRE(first.wait());
        REQUIRE(second.wait());
        CHECK(second.returned_after_ms() < 300 + kPrompt);
        CHECK_FALSE(second.report().drained);
        CHECK(same_report(first.report(), second.report()));
    }
    SECTION("close() from three threads ends the shutdown at once") {
        AsyncReport sd(srv, ms(30000));
        wait_shutting_down(srv);
        Clock::time_point t0 = Clock::now();
        std::vector<std::thread> closers;
        for (int i = 0; i < 3; ++i) closers.emplace_back([&srv] { srv.close(); });
        for (auto& t : closers) t.join();
        srv.close();
        REQUIRE(sd.wait());
        INFO(describe(sd.report()));
        CHECK(ms_between(t0, sd.returned()) < kPrompt);
        CHECK_FALSE(sd.report().drained);
        CHECK(sd.report().connections_forced == 1);
    }

    REQUIRE(run.wait_done()); // the deadline was enforced: serve() returns
    CHECK(oc(wait_close(c)) != "timeout");
    CHECK(c.buffer().empty()); // forced: no response
    srv.close();
    (void)srv.shutdown(ms(0));
    stuck->open();
    REQUIRE(exited->wait_arrived(1));
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #4: a bind error is a value naming the address and the OS error",
          "[shutdown]") {
    gh::Server a;
    a.get("/", hello());
    listen_local(a);
    const int port = a.port();
    support::Running run(a);
    {
        gh::Server b;
        gh::Error err = b.listen("127.0.0.1", port);
        INFO("listen: " << err.message());
        REQUIRE(static_cast<bool>(err));
        CHECK(err.code() == std::errc::address_in_use);
        CHECK(err.message().find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
        CHECK(err.message().find(support::in_use_text()) != std::string::npos);
        CHECK(b.port() == 0);
        // serve() on a server that is not listening: an error, at once
        Clock::time_point t0 = Clock::now();
        gh::Error serr = b.serve();
        INFO("serve: " << serr.message());
        CHECK(static_cast<bool>(serr));
        CHECK(ms_between(t0, Clock::now()) < kPrompt);
        // and b's destructor runs normally at the end of this scope
    }
    // the first server is unaffected
    support::Response r = support::get(port, "/");
    CHECK(oc(r.outcome) == "ok");
    CHECK(r.status == 200);
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #5: an idle acceptor wakes at once and the listener is closed",
          "[shutdown]") {
    gh::Server srv;
    srv.get("/", hello());
    listen_local(srv);
    const int port = srv.port();
    support::Running run(srv);
    REQUIRE(support::get(port, "/").status == 200); // the acceptor is running
    std::this_thread::sleep_for(ms(50));             // situation: it is blocked in poll

    AsyncReport sd(srv, slack());
    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.returned_after_ms() < kPrompt);
    CHECK(sd.report().drained);
    CHECK(sd.report().connections_forced == 0);
    REQUIRE(run.wait_done());
    CHECK(refused(port));
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #6: during drain_delay new connections are served with close, then "
          "refused",
          "[shutdown]") {
    const long delay = 1000;
    auto gate = std::make_shared<Gate>();
    auto probe = std::make_shared<Probe>();
    gh::Options opt;
    opt.drain_delay = ms(delay);
    gh::Server srv(opt);
    srv.get("/", [&srv, probe](const gh::Request& req, gh::Response& res) {
        probe->flag_a.store(srv.is_draining());
        probe->flag_b.store(req.shutdown_requested());
        res.text("hello");
    });
    srv.get("/hold", held(gate, "held"));
    listen_local(srv);
    const int port = srv.port();
    support::Running run(srv);
    OpenAtExit guard{{gate}};

    CHECK_FALSE(srv.is_draining());
    // a held request keeps the drain going past the delay
    support::Client holder;
    REQUIRE(holder.connect(port));
    REQUIRE(holder.send(get_req("/hold")));
    REQUIRE(gate->wait_arrived(1));

    AsyncReport sd(srv, slack());
    REQUIRE(support::eventually([&] { return srv.is_draining(); }));
    CHECK(srv.is_shutting_down());

    // a new connection during the delay: accepted and served, with close
    support::Client fresh;
    REQUIRE(fresh.connect(port));
    REQUIRE(fresh.send(get_req("/")));
    support::Response r = fresh.read_response();
    CHECK(oc(r.outcome) == "ok");
    CHECK(r.status == 200);
    CHECK(r.closes());
    CHECK(probe->flag_a.load()); // the handler saw is_draining()
    CHECK(probe->flag_b.load()); // and shutdown_requested()
    CHECK(oc(wait_close(fresh)) == "eof");
    fresh.close();
    REQUIRE(srv.is_draining()); // premise: all of that happened inside the delay

    // after the delay: no longer draining, and new connects are refused
    // while the held request is still in flight
    REQUIRE(support::eventually([&] { return !srv.is_draining(); }));
    CHECK(ms_between(sd.started(), Clock::now()) >= delay - kEarly);
    CHECK(support::eventually([&] { return refused(port); }));
    CHECK_FALSE(sd.ready(ms(0)));

    gate->open();
    support::Response hr = holder.read_response();
    CHECK(oc(hr.outcome) == "ok");
    CHECK(hr.closes());
    holder.close();
    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.report().drained);
    CHECK(sd.report().elapsed.count() >= delay);
    CHECK(sd.report().served_with_close == 2);
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #7: connections queued in the accept backlog are served, not reset",
          "[shutdown]") {
    const int kQueued = 50;
    auto gate = std::make_shared<Gate>();
    gh::Options opt;
    opt.max_connections = 1; // the acceptor stops calling accept() at one connection
    gh::Server srv(opt);
    srv.get("/", hello());
    srv.get("/hold", held(gate, "held"));
    listen_local(srv);
    support::Running run(srv);
    OpenAtExit guard{{gate}};

    support::Client holder;
    REQUIRE(holder.connect(srv.port()));
    REQUIRE(holder.send(get_req("/hold")));
    REQUIRE(gate->wait_arrived(1));

    // 50 clients connect and send their request; the kernel completes the
    // handshakes and queues them, the server does not accept them.
    std::vector<support::Client> queued(kQueued);
    for (auto& c : queued) {
        REQUIRE(c.connect(srv.port()));
        REQUIRE(c.send(get_req("/")));
    }
    CHECK(srv.stats().connections_total == 1);

    AsyncReport sd(srv, slack());
    wait_shutting_down(srv);
    // The listener stops: the backlog is accepted and served even though
    // the one allowed connection is still busy (otherwise a held request
    // would leave the queue to be reset at the deadline).
    support::Response first = queued[0].read_response();
    CHECK(oc(first.outcome) == "ok");
    gate->open();

    std::vector<support::Response> got;
    got.push_back(first);
    for (int i = 1; i < kQueued; ++i) got.push_back(queued[i].read_response());
    int ok = 0, with_close = 0, clean_close = 0;
    std::string bad;
    for (int i = 0; i < kQueued; ++i) {
        const support::Response& r = got[static_cast<size_t>(i)];
        if (r.outcome == Outcome::ok && r.status == 200 && r.body == "hello")
            ++ok;
        else
            bad += " #" + std::to_string(i) + ":" + oc(r.outcome) + "/" + std::to_string(r.status);
        if (r.closes()) ++with_close;
        if (r.outcome == Outcome::ok && wait_close(queued[static_cast<size_t>(i)]) == Outcome::eof)
            ++clean_close;
        queued[static_cast<size_t>(i)].close();
    }
    INFO("failed:" << bad);
    CHECK(ok == kQueued);
    CHECK(with_close == kQueued);
    CHECK(clean_close == kQueued);

    support::Response hr = holder.read_response();
    CHECK(oc(hr.outcome) == "ok");
    CHECK(hr.closes());
    holder.close();

    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.report().drained);
    CHECK(sd.report().served_from_backlog == static_cast<std::uint64_t>(kQueued));
    CHECK(sd.report().served_with_close == static_cast<std::uint64_t>(kQueued + 1));
    CHECK(sd.report().connections_forced == 0);
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #8: responses after shutdown carry close; a stream already running "
          "finishes, then closes",
          "[shutdown]") {
    auto gate = std::make_shared<Gate>();
    gh::Server srv;
    srv.get("/stream", [gate](const gh::Request&, gh::Response& res) {
        if (!res.begin_stream()) return;
        res.write("first;");
        gate->arrive();
        gate->wait();
        res.write("second;");
        res.write("third;");
    });
    srv.get("/plain", held(gate, "plain"));
    listen_local(srv);
    support::Running run(srv);
    OpenAtExit guard{{gate}};

    support::Client s, p;
    REQUIRE(s.connect(srv.port()));
    REQUIRE(s.send(get_req("/stream")));
    REQUIRE(p.connect(srv.port()));
    REQUIRE(p.send(get_req("/plain")));
    REQUIRE(gate->wait_arrived(2));

    AsyncReport sd(srv, slack());
    wait_shutting_down(srv);
    gate->open();

    support::Response sr = s.read_response();
    CHECK(oc(sr.outcome) == "ok"); // includes the chunked terminator
    CHECK(sr.status == 200);
    CHECK(sr.chunked);
    CHECK(sr.body == "first;second;third;");
    CHECK(oc(wait_close(s)) == "eof"); // then the connection closes, cleanly
    CHECK(s.buffer().empty());
    s.close();

    support::Response pr = p.read_response();
    CHECK(oc(pr.outcome) == "ok");
    CHECK(pr.body == "plain");
    CHECK(pr.closes());
    CHECK(oc(wait_close(p)) == "eof");
    p.close();

    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.report().drained);
    // the stream's head went out before shutdown, so only /plain said close
    CHECK(sd.report().served_with_close == 1);
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #9: idle keep-alive: served with close during the delay, closed with "
          "FIN after it",
          "[shutdown]") {
    const long delay = 800;
    gh::Options opt;
    opt.drain_delay = ms(delay);
    gh::Server srv(opt);
    srv.get("/", hello());
    listen_local(srv);
    support::Running run(srv);

    support::Client k1, k2;
    for (auto* c : {&k1, &k2}) {
        REQUIRE(c->connect(srv.port()));
        REQUIRE(c->send(get_req("/")));
        support::Response r = c->read_response();
        REQUIRE(oc(r.outcome) == "ok");
        CHECK_FALSE(r.closes()); // keep-alive before shutdown
    }

    AsyncReport sd(srv, slack());
    REQUIRE(support::eventually([&] { return srv.is_draining(); }));

    // k1: a request on the idle connection during the delay
    REQUIRE(k1.send(get_req("/")));
    support::Response r1 = k1.read_response();
    CHECK(oc(r1.outcome) == "ok");
    CHECK(r1.status == 200);
    CHECK(r1.closes());
    CHECK(oc(wait_close(k1)) == "eof");
    k1.close();

    // k2 stays idle: closed, cleanly, once the delay is over
    CHECK(oc(wait_close(k2)) == "eof");
    CHECK_FALSE(k2.last_was_reset());
    CHECK(k2.buffer().empty());
    CHECK(ms_between(sd.started(), Clock::now()) >= delay - kEarly);
    k2.close();

    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.report().drained);
    CHECK(sd.report().idle_closed == 1);
    CHECK(sd.report().served_with_close == 1);
    CHECK(sd.report().connections_forced == 0);
}

TEST_CASE("shutdown #9: without a drain delay idle keep-alive connections close at once",
          "[shutdown]") {
    gh::Server srv;
    srv.get("/", hello());
    listen_local(srv);
    support::Running run(srv);

    std::vector<support::Client> idle(2);
    for (auto& c : idle) {
        REQUIRE(c.connect(srv.port()));
        REQUIRE(c.send(get_req("/")));
        REQUIRE(oc(c.read_response().outcome) == "ok");
    }
    AsyncReport sd(srv, slack());
    for (auto& c : idle) {
        CHECK(oc(wait_close(c)) == "eof");
        CHECK(c.buffer().empty());
    }
    CHECK(ms_between(sd.started(), Clock::now()) < kPrompt);
    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.returned_after_ms() < kPrompt);
    CHECK(sd.report().drained);
    CHECK(sd.report().idle_closed == 2);
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #10: a silent connection is closed after drain_silent_timeout",
          "[shutdown]") {
    const long silent_ms = 200;
    gh::Options opt;
    opt.drain_silent_timeout = ms(silent_ms);
    gh::Server srv(opt);
    srv.get("/", hello());
    listen_local(srv);
    support::Running run(srv);

    support::Client s;
    REQUIRE(s.connect(srv.port()));
    REQUIRE(support::eventually([&] { return srv.stats().active_connections == 1; }));

    AsyncReport sd(srv, slack());
    CHECK(oc(wait_close(s)) == "eof"); // a clean FIN, not a reset
    const long closed_after = ms_between(sd.started(), Clock::now());
    CHECK(s.buffer().empty());
    CHECK(closed_after >= silent_ms - kEarly); // it was given the bound
    CHECK(closed_after < silent_ms + kPrompt); // and not read_header_timeout (10 s)
    s.close();

    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.report().drained);
    CHECK(sd.report().silent_closed == 1);
    CHECK(sd.report().idle_closed == 0);
    CHECK(sd.report().connections_forced == 0);
}

TEST_CASE("shutdown #10: a request that arrives inside drain_silent_timeout is served with "
          "close",
          "[shutdown]") {
    gh::Options opt;
    opt.drain_silent_timeout = ms(1000);
    gh::Server srv(opt);
    srv.get("/", hello());
    listen_local(srv);
    support::Running run(srv);

    support::Client t;
    REQUIRE(t.connect(srv.port()));
    REQUIRE(support::eventually([&] { return srv.stats().active_connections == 1; }));

    AsyncReport sd(srv, slack());
    wait_shutting_down(srv);
    std::this_thread::sleep_for(ms(50)); // situation: the silent window is running
    REQUIRE(t.send(get_req("/")));
    support::Response r = t.read_response();
    CHECK(oc(r.outcome) == "ok");
    CHECK(r.status == 200);
    CHECK(r.closes());
    CHECK(oc(wait_close(t)) == "eof");
    t.close();

    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.report().drained);
    CHECK(sd.report().silent_closed == 0);
    CHECK(sd.report().served_with_close == 1);
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #11: a partial request during the drain is bounded by "
          "read_header_timeout",
          "[shutdown]") {
    const long header_ms = 500;
    gh::Options opt;
    opt.read_header_timeout = ms(header_ms);
    gh::Server srv(opt);
    srv.get("/", hello());
    listen_local(srv);
    support::Running run(srv);

    support::Client p;
    REQUIRE(p.connect(srv.port()));
    REQUIRE(p.send("GET / HTTP/1.1\r\nHost: test\r\n")); // half the head
    AsyncReport sd(srv, slack());
    support::Response r = p.read_response();
    CHECK(oc(r.outcome) == "ok");
    CHECK(r.status == 408);
    CHECK(oc(wait_close(p)) == "eof");
    p.close();

    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.report().drained);
    CHECK(sd.report().connections_forced == 0);
    CHECK(sd.returned_after_ms() < header_ms + kPrompt);
}

TEST_CASE("shutdown #11: a partial request never holds the drain past the deadline",
          "[shutdown]") {
    gh::Server srv; // read_header_timeout 10 s: longer than the deadline
    srv.get("/", hello());
    listen_local(srv);
    support::Running run(srv);

    support::Client p;
    REQUIRE(p.connect(srv.port()));
    REQUIRE(p.send("GET / HTTP/1.1\r\nHost: test\r\n"));
    REQUIRE(support::eventually([&] { return srv.stats().active_connections == 1; }));

    Clock::time_point t0 = Clock::now();
    gh::ShutdownReport rep = srv.shutdown(ms(300));
    const long took = ms_between(t0, Clock::now());
    INFO(describe(rep));
    CHECK_FALSE(rep.drained);
    CHECK(rep.completed);
    CHECK(rep.connections_forced == 1);
    CHECK(rep.elapsed.count() >= 300 - kEarly);
    CHECK(took >= 300 - kEarly);
    CHECK(took < 300 + kPrompt);
    CHECK(oc(wait_close(p)) != "timeout");
    REQUIRE(run.wait_done());
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #12: lingering close: a pipelined request with an unread body does not "
          "reset the response",
          "[shutdown]") {
    static constexpr size_t kResponse = 2 * 1024 * 1024;
    const size_t kUnread = 1024 * 1024;
    auto gate = std::make_shared<Gate>();
    gh::Server srv;
    srv.get("/big", [gate](const gh::Request&, gh::Response& res) {
        gate->arrive();
        gate->wait();
        std::string body(kResponse, 'x');
        for (size_t i = 0; i < body.size(); i += 4096)
            body[i] = static_cast<char>('a' + (i / 4096) % 26);
        res.text(body);
    });
    srv.post("/upload", [](const gh::Request& req, gh::Response& res) {
        res.text(std::to_string(req.body().size()));
    });
    listen_local(srv);
    support::Running run(srv);
    OpenAtExit guard{{gate}};

    // The first response ends the connection, either because the client
    // asked or because the drain did; the second request's large body is
    // never read by the server. A plain close() would answer that unread
    // input with a reset and destroy the 2 MiB response in flight.
    bool client_asks_close = true;
    SECTION("the client asked for close") { client_asks_close = true; }
    SECTION("the drain closes a keep-alive connection") { client_asks_close = false; }

    support::Client c;
    REQUIRE(c.connect(srv.port()));
    std::string wire = get_req("/big", client_asks_close ? "Connection: close\r\n" : "") +
                       "POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: " +
                       std::to_string(kUnread) + "\r\n\r\n" + std::string(kUnread, 'u');
    std::atomic<bool> sent_all{false};
    std::thread sender([&] { sent_all.store(c.send(wire)); }); // one write
    struct Join {
        std::thread& t;
        ~Join() {
            if (t.joinable()) t.join();
        }
    } join_sender{sender};

    REQUIRE(gate->wait_arrived(1));
    AsyncReport sd(srv, slack());
    wait_shutting_down(srv);
    gate->open();

    support::Response r = c.read_response();
    CHECK(oc(r.outcome) == "ok");
    CHECK(r.status == 200);
    CHECK(r.body.size() == kResponse);
    CHECK(r.closes());
    sender.join();
    CHECK(sent_all.load()); // the server read and discarded it
    c.shutdown_write();     // our EOF ends the server's lingering read
    CHECK(oc(wait_close(c)) == "eof");
    CHECK_FALSE(c.last_was_reset());
    CHECK(c.buffer().empty()); // the second request was never answered
    c.close();

    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.report().drained);
    CHECK(sd.report().served_with_close == (client_asks_close ? 0u : 1u));
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #13: a handler waiting in wait_for_shutdown() sees shutdown at once",
          "[shutdown]") {
    auto gate = std::make_shared<Gate>();
    auto probe = std::make_shared<Probe>();
    gh::Server srv;
    srv.get("/poll", [gate, probe](const gh::Request& req, gh::Response& res) {
        probe->flag_b.store(req.shutdown_requested()); // before: false
        gate->arrive();
        bool seen = req.wait_for_shutdown(ms(10000));
        probe->mark();
        probe->flag_a.store(seen && req.shutdown_requested());
        res.text(seen ? "saw shutdown" : "timed out");
    });
    listen_local(srv);
    support::Running run(srv);

    support::Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(get_req("/poll")));
    REQUIRE(gate->wait_arrived(1));
    const long t0 = ms_between(probe->origin, Clock::now());
    AsyncReport sd(srv, slack());

    support::Response r = c.read_response();
    CHECK(oc(r.outcome) == "ok");
    CHECK(r.body == "saw shutdown");
    CHECK(r.closes());
    CHECK(probe->flag_a.load());
    CHECK_FALSE(probe->flag_b.load());
    CHECK(probe->at_ms.load() - t0 < kPrompt);
    c.close();

    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.report().drained);
}

TEST_CASE("shutdown #13: a stream that stops on shutdown ends its chunked body properly",
          "[shutdown]") {
    auto gate = std::make_shared<Gate>();
    gh::Server srv;
    srv.get("/ticks", [gate](const gh::Request& req, gh::Response& res) {
        if (!res.begin_stream()) return;
        res.write("tick;");
        gate->arrive();
        while (!req.wait_for_shutdown(ms(20)))
            if (!res.write("tick;")) return;
        res.write("bye;");
    });
    listen_local(srv);
    support::Running run(srv);

    support::Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(get_req("/ticks")));
    REQUIRE(gate->wait_arrived(1));
    AsyncReport sd(srv, slack());

    support::Response r = c.read_response();
    CHECK(oc(r.outcome) == "ok"); // ok: the 0\r\n\r\n terminator arrived
    CHECK(r.chunked);
    CHECK(r.body.rfind("tick;", 0) == 0);
    CHECK(r.body.size() >= 9);
    CHECK(r.body.substr(r.body.size() - 4) == "bye;");
    CHECK(oc(wait_close(c)) == "eof");
    CHECK(c.buffer().empty());
    c.close();

    REQUIRE(sd.wait());
    INFO(describe(sd.report()));
    CHECK(sd.report().drained);
    CHECK(sd.returned_after_ms() < kPrompt);
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #14: at the deadline handlers that ignore shutdown are forced and see "
          "cancelled()",
          "[shutdown]") {
    std::thread([] {}).join(); // see the first test: runtime helper threads
    const int fds_before = support::count_fds();
    const int threads_before = support::count_threads();
    auto stuck = std::make_shared<Gate>();
    auto arrived = std::make_shared<Gate>();
    auto exited = std::make_shared<Gate>();
    auto stuck_probe = std::make_shared<Probe>();
    auto poll_probe = std::make_shared<Probe>();
    {
        gh::Server srv;
        srv.get("/stuck", [stuck, arrived, exited, stuck_probe](const gh::Request& req,
                                                                  gh::Response& res) {
            arrived->arrive();
            stuck->wait(); // user code that cannot be interrupted
            stuck_probe->flag_a.store(req.cancelled());
            res.text("never delivered");
            exited->arrive();
        });
        srv.get("/poll", [arrived, exited, poll_probe](const gh::Request& req,
                                                       gh::Response& res) {
            arrived->arrive();
            bool c = req.wait_for_cancel(slack()); // ignores shutdown, sees cancel
            poll_probe->mark();
            poll_probe->flag_a.store(c && req.cancelled());
            res.text("never delivered");
            exited->arrive();
        });
        listen_local(srv);
        support::Running run(srv);
        OpenAtExit guard{{stuck}};

        support::Client a, b;
        REQUIRE(a.connect(srv.port()));
        REQUIRE(a.send(get_req("/stuck")));
        REQUIRE(b.connect(srv.port()));
        REQUIRE(b.send(get_req("/poll")));
        REQUIRE(arrived->wait_arrived(2));

        const long t0 = ms_between(poll_probe->origin, Clock::now());
        Clock::time_point t0c = Clock::now();
        gh::ShutdownReport rep = srv.shutdown(ms(300));
        const long took = ms_between(t0c, Clock::now());
        INFO(describe(rep));
        CHECK_FALSE(rep.drained);
        CHECK(rep.completed);
        CHECK(rep.connections_forced == 2);
        CHECK(rep.elapsed.count() >= 300 - kEarly);
        CHECK(rep.elapsed.count() < 300 + kPrompt);
        CHECK(took >= 300 - kEarly);
        CHECK(took < 300 + kPrompt);
        // serve() returns: the deadline was enforced, though /stuck still runs
        REQUIRE(run.wait_done());
        CHECK(srv.stats().active_requests >= 1);

        // the polling handler woke at the deadline with cancelled()
        REQUIRE(exited->wait_arrived(1));
        CHECK(poll_probe->flag_a.load());
        CHECK(poll_probe->at_ms.load() - t0 >= 300 - kEarly);
        CHECK(poll_probe->at_ms.load() - t0 < 300 + kPrompt);

        // both clients were cut: closed, no response
        CHECK(oc(wait_close(a)) != "timeout");
        CHECK(a.buffer().empty());
        CHECK(oc(wait_close(b)) != "timeout");
        CHECK(b.buffer().empty());

        stuck->open();
        REQUIRE(exited->wait_arrived(2));
        CHECK(stuck_probe->flag_a.load());
    }
    // The stuck handler's thread was detached; once it returns it must
    // release its socket and exit (no leak). It publishes its exit only
    // through /proc, hence eventually().
    CHECK(support::eventually([&] { return support::count_threads() == threads_before; }));
    CHECK(support::eventually([&] { return support::count_fds() == fds_before; }));
}

TEST_CASE("shutdown #14: at the deadline blocked reads and writes wake", "[shutdown]") {
    auto arrived = std::make_shared<Gate>();
    auto exited = std::make_shared<Gate>();
    auto read_probe = std::make_shared<Probe>();
    auto write_probe = std::make_shared<Probe>();
    gh::Server srv; // default timeouts: 10 s header, 60 s body and write
    srv.post("/upload", [arrived, exited, read_probe](const gh::Request& req,
                                                      gh::Response& res) {
        arrived->arrive();
        const std::string& body = req.body(); // blocks: the body never comes
        read_probe->mark();
        read_probe->flag_a.store(req.body_ok());
        read_probe->count.store(static_cast<long>(body.size()));
        res.text("never delivered");
        exited->arrive();
    });
    srv.get("/flood", [arrived, exited, write_probe](const gh::Request&, gh::Response& res) {
        bool ok = res.begin_stream();
        arrived->arrive();
        const std::string chunk(64 * 1024, 'f');
        while (ok && res.write(chunk)) write_probe->count.fetch_add(1);
        write_probe->mark(); // a write failed: the client never reads
        exited->arrive();
    });
    listen_local(srv);
    support::Running run(srv);

    support::Client up, flood, partial;
    REQUIRE(up.connect(srv.port()));
    REQUIRE(up.send("POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n"
                    "only ten b"));
    REQUIRE(flood.connect(srv.port()));
    REQUIRE(flood.send(get_req("/flood")));
    REQUIRE(partial.connect(srv.port()));
    REQUIRE(partial.send("GET / HTTP/1.1\r\nHost: test\r\n"));
    REQUIRE(arrived->wait_arrived(2));
    REQUIRE(support::eventually([&] { return srv.stats().active_connections == 3; }));

    const long t0 = ms_between(read_probe->origin, Clock::now());
    const long t0w = ms_between(write_probe->origin, Clock::now());
    Clock::time_point t0c = Clock::now();
    gh::ShutdownReport rep = srv.shutdown(ms(300));
    const long took = ms_between(t0c, Clock::now());
    INFO(describe(rep));
    CHECK_FALSE(rep.drained);
    CHECK(rep.connections_forced == 3);
    CHECK(took >= 300 - kEarly);
    CHECK(took < 300 + kPrompt);

    REQUIRE(exited->wait_arrived(2));
    // the blocked body read returned at the deadline, failed
    CHECK_FALSE(read_probe->flag_a.load());
    CHECK(read_probe->at_ms.load() - t0 >= 300 - kEarly);
    CHECK(read_probe->at_ms.load() - t0 < 300 + kPrompt);
    // the blocked write returned false at the deadline
    CHECK(write_probe->count.load() > 0);
    CHECK(write_probe->at_ms.load() - t0w >= 300 - kEarly);
    CHECK(write_probe->at_ms.load() - t0w < 300 + kPrompt);
    // the half-sent request was force-closed
    CHECK(oc(wait_close(partial)) != "timeout");
    CHECK(oc(wait_close(up)) != "timeout");
    CHECK(up.buffer().empty());
    REQUIRE(run.wait_done());
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #15 (in-process): serve_until_signal drains on SIGINT and restores the "
          "handlers",
          "[shutdown]") {
    struct sigaction int_before {}, term_before {};
    sigaction(SIGINT, nullptr, &int_before);
    sigaction(SIGTERM, nullptr, &term_before);

    auto gate = std::make_shared<Gate>();
    gh::Server srv;
    srv.get("/hold", held(gate, "held"));
    listen_local(srv);

    support::Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(get_req("/hold")));
    AsyncReport sig(srv, [&srv] { return gh::serve_until_signal(srv, slack()); });
    OpenAtExit guard{{gate}};
    REQUIRE(gate->wait_arrived(1));
    // Raise the signal only once the library's handlers are installed
    // (before that, Catch2's fatal-signal handler would end the run).
    REQUIRE(support::eventually([&] {
        return handler_installed(SIGINT, int_before) && handler_installed(SIGTERM, term_before);
    }));
    REQUIRE(::kill(::getpid(), SIGINT) == 0);
    wait_shutting_down(srv);
    CHECK_FALSE(sig.ready(ms(300))); // draining, not returned

    gate->open();
    support::Response r = c.read_response();
    CHECK(oc(r.outcome) == "ok");
    CHECK(r.status == 200);
    CHECK(r.closes());
    c.close();

    REQUIRE(sig.wait());
    INFO(describe(sig.report()));
    CHECK(sig.report().drained);
    CHECK(sig.report().completed);
    CHECK(sig.report().connections_forced == 0);
    CHECK(sig.report().served_with_close == 1);
    CHECK_FALSE(handler_installed(SIGINT, int_before));
    CHECK_FALSE(handler_installed(SIGTERM, term_before));
}

TEST_CASE("shutdown #15 (in-process): a second SIGTERM forces the close at once",
          "[shutdown]") {
    struct sigaction int_before {}, term_before {};
    sigaction(SIGINT, nullptr, &int_before);
    sigaction(SIGTERM, nullptr, &term_before);

    auto stuck = std::make_shared<Gate>();
    auto exited = std::make_shared<Gate>();
    gh::Server srv;
    srv.get("/stuck", [stuck, exited](const gh::Request&, gh::Response& res) {
        stuck->arrive();
        stuck->wait(); // ignores shutdown
        res.text("late");
        exited->arrive();
    });
    listen_local(srv);

    support::Client c;
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(get_req("/stuck")));
    AsyncReport sig(srv, [&srv] { return gh::serve_until_signal(srv, ms(30000)); });
    OpenAtExit guard{{stuck}};
    REQUIRE(stuck->wait_arrived(1));
    REQUIRE(support::eventually([&] {
        return handler_installed(SIGINT, int_before) && handler_installed(SIGTERM, term_before);
    }));
    REQUIRE(::kill(::getpid(), SIGTERM) == 0);
    wait_shutting_down(srv);
    CHECK_FALSE(sig.ready(ms(100))); // the first signal only drains
    Clock::time_point second = Clock::now();
    REQUIRE(::kill(::getpid(), SIGTERM) == 0);

    REQUIRE(sig.wait());
    INFO(describe(sig.report()));
    CHECK(ms_between(second, sig.returned()) < kPrompt); // not the 30 s grace
    CHECK_FALSE(sig.report().drained);
    CHECK(sig.report().connections_forced == 1);
    CHECK_FALSE(handler_installed(SIGINT, int_before));
    CHECK_FALSE(handler_installed(SIGTERM, term_before));
    CHECK(oc(wait_close(c)) != "timeout");
    CHECK(c.buffer().empty());
    stuck->open();
    REQUIRE(exited->wait_arrived(1));
}

TEST_CASE("shutdown #15 (in-process): serve_until_signal on a server that is not listening "
          "returns at once",
          "[shutdown]") {
    struct sigaction term_before {};
    sigaction(SIGTERM, nullptr, &term_before);
    gh::Server srv;
    AsyncReport sig(srv, [&srv] { return gh::serve_until_signal(srv, slack()); });
    REQUIRE(sig.wait());
    CHECK(sig.returned_after_ms() < kPrompt);
    INFO(describe(sig.report()));
    CHECK_FALSE(sig.report().drained);
    CHECK_FALSE(sig.report().completed);
    CHECK_FALSE(handler_installed(SIGTERM, term_before));
}

// ---------------------------------------------------------------------------
TEST_CASE("shutdown #20: the report counts every outcome of one drain", "[shutdown]") {
    auto hold = std::make_shared<Gate>();
    auto stuck = std::make_shared<Gate>();
    auto exited = std::make_shared<Gate>();
    gh::Options opt;
    opt.max_connections = 4;
    opt.drain_silent_timeout = ms(200);
    gh::Server srv(opt);
    srv.get("/", hello());
    srv.get("/hold", held(hold, "held"));
    srv.get("/stuck", [stuck, exited](const gh::Request&, gh::Response& res) {
        stuck->arrive();
        stuck->wait();
        res.text("late");
        exited->arrive();
    });
    listen_local(srv);
    support::Running run(srv);
    OpenAtExit guard{{hold, stuck}};

    // four connections fill max_connections: idle, held, stuck, silent
    support::Client idle, h, f, s, b1, b2;
    REQUIRE(idle.connect(srv.port()));
    REQUIRE(idle.send(get_req("/")));
    REQUIRE(oc(idle.read_response().outcome) == "ok");
    REQUIRE(h.connect(srv.port()));
    REQUIRE(h.send(get_req("/hold")));
    REQUIRE(hold->wait_arrived(1));
    REQUIRE(f.connect(srv.port()));
    REQUIRE(f.send(get_req("/stuck")));
    REQUIRE(stuck->wait_arrived(1));
    REQUIRE(s.connect(srv.port()));
    REQUIRE(support::eventually([&] { return srv.stats().active_connections == 4; }));
    // two more wait in the backlog
    REQUIRE(b1.connect(srv.port()));
    REQUIRE(b1.send(get_req("/")));
    REQUIRE(b2.connect(srv.port()));
    REQUIRE(b2.send(get_req("/")));

    AsyncReport sd(srv, ms(2000)); // the stuck handler makes it reach the deadline
    wait_shutting_down(srv);
    hold->open();

    CHECK(oc(wait_close(idle)) == "eof");
    support::Response hr = h.read_response();
    CHECK(oc(hr.outcome) == "ok");
    CHECK(hr.closes());
    h.close();
    for (auto* b : {&b1, &b2}) {
        support::Response r = b->read_response();
        CHECK(oc(r.outcome) == "ok");
        CHECK(r.status == 200);
        CHECK(r.closes());
        b->close();
    }
    CHECK(oc(wait_close(s)) == "eof");
    CHECK(oc(wait_close(f)) != "timeout"); // forced at the deadline

    REQUIRE(sd.wait());
    const gh::ShutdownReport rep = sd.report();
    INFO(describe(rep));
    CHECK_FALSE(rep.drained);
    CHECK(rep.completed);
    CHECK(rep.connections_forced == 1);
    CHECK(rep.served_from_backlog == 2);
    CHECK(rep.served_with_close == 3); // /hold and the two from the backlog
    CHECK(rep.idle_closed == 1);
    CHECK(rep.silent_closed == 1);
    CHECK(rep.elapsed.count() >= 2000 - kEarly);
    // the program sees the same counts in stats()
    const gh::ShutdownReport live = srv.stats().drain;
    INFO("stats().drain: " << describe(live));
    CHECK(live.served_from_backlog == rep.served_from_backlog);
    CHECK(live.served_with_close == rep.served_with_close);
    CHECK(live.idle_closed == rep.idle_closed);
    CHECK(live.silent_closed == rep.silent_closed);
    CHECK(live.connections_forced == rep.connections_forced);

    stuck->open();
    REQUIRE(exited->wait_arrived(1));
}
