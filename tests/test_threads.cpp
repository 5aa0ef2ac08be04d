// Connection threads and the idle read: spare threads serve the next
// connection (Options::spare_threads) and end when the server stops; idle
// keep-alive connections wait in recv() itself and are woken at the stop
// by shutting their read side (Linux; elsewhere, and with
// GRACEFUL_HTTP_PORTABLE, in poll() woken by the stop wake pipe), without
// losing a request that was arriving at that very moment. Real sockets on
// loopback.
#include <catch2/catch.hpp>

#include "support.hpp"

#include <atomic>
#include <future>
#include <set>

using namespace std::chrono_literals;
namespace gh = graceful_http;
using support::Client;
using support::Gate;
using support::ms;
using support::slack;

namespace {

std::string oc(support::Outcome o) { return support::outcome_name(o); }

void listen_local(gh::Server& srv) {
    gh::Error err = srv.listen("127.0.0.1", 0);
    INFO("listen: " << err.message());
    REQUIRE_FALSE(static_cast<bool>(err));
}

// A number for the calling thread: unlike pthread_t, never reused after
// a thread ends, so two connections served by different threads always
// show different numbers.
long thread_number() {
    static std::atomic<long> next{0};
    thread_local long mine = ++next;
    return mine;
}

// Records which threads ran the handler.
struct Tids {
    std::mutex mu;
    std::set<long> seen;
    void add() {
        std::lock_guard<std::mutex> lk(mu);
        seen.insert(thread_number());
    }
    std::size_t count() {
        std::lock_guard<std::mutex> lk(mu);
        return seen.size();
    }
};

// n connections one after another, each `Connection: close`, each waited
// for until the server has unregistered it.
void sequential_closes(gh::Server& srv, int n) {
    for (int i = 0; i < n; ++i) {
        Client c;
        REQUIRE(c.connect(srv.port()));
        REQUIRE(c.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(oc(r.outcome) == "ok");
        REQUIRE(r.status == 200);
        REQUIRE(c.wait_closed());
        REQUIRE(support::eventually([&] { return srv.stats().active_connections == 0; }));
    }
}

} // namespace

TEST_CASE("threads: a spare thread serves the next connection", "[threads]") {
    auto tids = std::make_shared<Tids>();
    gh::Server srv; // spare_threads defaults to 32
    srv.get("/", [tids](const gh::Request&, gh::Response& res) {
        tids->add();
        res.text("hi\n");
    });
    listen_local(srv);
    support::Running run(srv);
    sequential_closes(srv, 20);
    CHECK(srv.stats().connections_total == 20);
    CHECK(tids->count() == 1); // one thread, handed one connection after another
}

TEST_CASE("threads: spare_threads = 0 ends each thread with its connection", "[threads]") {
    std::thread([] {}).join(); // runtime helper threads start with the first thread
    auto tids = std::make_shared<Tids>();
    gh::Options opt;
    opt.spare_threads = 0;
    gh::Server srv(opt);
    srv.get("/", [tids](const gh::Request&, gh::Response& res) {
        tids->add();
        res.text("hi\n");
    });
    listen_local(srv);
    support::Running run(srv);
    REQUIRE(support::eventually([&] { return support::count_threads() > 1; }));
    const int serving = support::count_threads(); // this one + serve()'s
    sequential_closes(srv, 10);
    CHECK(tids->count() == 10);
    // Each connection's thread ends with it (joined by the acceptor later;
    // its exit shows only in /proc, hence eventually).
    CHECK(support::eventually([&] { return support::count_threads() == serving; }));
}

TEST_CASE("threads: spare threads end when the server stops, and serve() joins them",
          "[threads]") {
    std::thread([] {}).join();
    const int threads_before = support::count_threads();
    const int fds_before = support::count_fds();
    int threads_after = -1;
    {
        auto gate = std::make_shared<Gate>();
        gh::Server srv;
        srv.get("/", [gate](const gh::Request&, gh::Response& res) {
            gate->arrive();
            gate->wait(); // no Catch2 assertions off the test's thread
            res.text("hi\n");
        });
        listen_local(srv);
        support::Running run(srv);
        // Eight connections at once: eight threads, all spares afterwards.
        std::vector<Client> cs(8);
        for (auto& c : cs) {
            REQUIRE(c.connect(srv.port()));
            REQUIRE(c.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
        }
        REQUIRE(gate->wait_arrived(8));
        gate->open();
        for (auto& c : cs) {
            CHECK(c.read_response().status == 200);
            CHECK(c.wait_closed());
        }
        REQUIRE(support::eventually([&] { return srv.stats().active_connections == 0; }));
        CHECK(support::count_threads() >= threads_before + 1 + 8); // serve() + 8 spares
        gh::ShutdownReport rep = srv.shutdown(slack());
        CHECK(rep.drained);
        REQUIRE(run.wait_done());
        run.join();
        threads_after = support::count_threads(); // exact: serve() joined them
    }
    CHECK(threads_after == threads_before);
    CHECK(support::count_fds() == fds_before);
}

TEST_CASE("threads: a spare thread ends after 5 s without a connection", "[threads]") {
    std::thread([] {}).join();
    gh::Server srv;
    srv.get("/", [](const gh::Request&, gh::Response& res) { res.text("hi\n"); });
    listen_local(srv);
    support::Running run(srv);
    REQUIRE(support::eventually([&] { return support::count_threads() > 1; }));
    const int serving = support::count_threads();
    sequential_closes(srv, 1);
    CHECK(support::count_threads() == serving + 1); // the spare waits
    auto t0 = support::Clock::now();
    REQUIRE(support::eventually([&] { return support::count_threads() == serving; },
                                ms(5000) + slack()));
    CHECK(support::elapsed_ms(t0) >= 4900); // not before kSpareLinger
}

// ---------------------------------------------------------------------------
// The idle read. The hook holds the connection thread right after its
// blocking recv() returned and before it claims the connection, so the
// stop can shut the read side in exactly that window. Where the platform
// has no blocking idle read (GRACEFUL_HTTP_PORTABLE, macOS, the BSDs:
// kBlockingIdleRead is false) the same tests hold the thread right after
// its poll() on the socket and the stop wake pipe returned, before it
// reads: the stop's wake-up lands in that window instead, and the
// guarantee is the same.

namespace {

struct HookGate {
    Gate returned; // the idle recv() (or poll()) returned (the thread is held)
    Gate release;  // let it go on
};
std::atomic<HookGate*> g_hook{nullptr};

void hold_idle_read() {
    HookGate* h = g_hook.load();
    if (h == nullptr) return;
    h->returned.arrive();
    h->release.wait();
}

struct HookGuard {
    explicit HookGuard(HookGate* h) {
        g_hook = h;
        gh::detail::idle_read_hook() = &hold_idle_read;
    }
    ~HookGuard() {
        gh::detail::idle_read_hook() = nullptr;
        if (HookGate* h = g_hook.exchange(nullptr)) h->release.open();
    }
};

// Sets up one keep-alive connection that has had one response and now
// waits in the idle read.
void first_request(gh::Server& srv, Client& c) {
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
    support::Response r = c.read_response();
    REQUIRE(r.status == 200);
    REQUIRE_FALSE(r.closes());
}

} // namespace

TEST_CASE("threads: a request caught by the stop as it arrives is served, whole or in parts",
          "[threads]") {
    const bool split = GENERATE(false, true);
    INFO((split ? "request in two parts, the second after the stop woke idle readers"
                : "whole request"));
    INFO((gh::detail::kBlockingIdleRead ? "blocking idle recv(), woken by SHUT_RD"
                                        : "idle poll(), woken by the stop pipe"));
    HookGate hook;
    Gate shut; // on_shutdown ran: the idle readers have been woken
    gh::Server srv;
    srv.get("/", [](const gh::Request&, gh::Response& res) { res.text("hi\n"); });
    srv.on_shutdown([&shut] { shut.open(); });
    listen_local(srv);
    support::Running run(srv);
    Client c;
    first_request(srv, c);
    HookGuard guard(&hook);

    const std::string req = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    REQUIRE(c.send(split ? req.substr(0, 10) : req));
    REQUIRE(hook.returned.wait_arrived(1)); // recv() (poll()) returned with the bytes
    auto sd = std::async(std::launch::async, [&srv] { return srv.shutdown(slack()); });
    REQUIRE(shut.wait()); // the stop has woken idle readers (SHUT_RD, or the pipe)
    if (split) REQUIRE(c.send(req.substr(10))); // arrives after that
    hook.release.open();

    support::Response r = c.read_response();
    CHECK(oc(r.outcome) == "ok");
    CHECK(r.status == 200);
    CHECK(r.body == "hi\n");
    CHECK(r.closes());
    CHECK(c.wait_closed());
    gh::ShutdownReport rep = sd.get();
    CHECK(rep.drained);
    CHECK(rep.served_with_close == 1);
    CHECK(rep.idle_closed == 0);
}

TEST_CASE("threads: an idle reader woken by the stop closes with a clean FIN", "[threads]") {
    HookGate hook;
    gh::Server srv;
    srv.get("/", [](const gh::Request&, gh::Response& res) { res.text("hi\n"); });
    listen_local(srv);
    support::Running run(srv);
    std::vector<Client> cs(3);
    for (auto& c : cs) first_request(srv, c);
    auto t0 = support::Clock::now();
    gh::ShutdownReport rep = srv.shutdown(slack());
    CHECK(support::elapsed_ms(t0) < 2000); // woken, not left to idle_timeout
    for (auto& c : cs) {
        CHECK(c.wait_closed());
        CHECK_FALSE(c.last_was_reset());
        CHECK(c.buffer().empty());
    }
    CHECK(rep.drained);
    CHECK(rep.idle_closed == 3);
}

TEST_CASE("threads: a connection handed over by take_over() is non-blocking", "[threads]") {
    std::promise<int> flags;
    auto got = flags.get_future();
    gh::Server srv;
    srv.get("/up", [&flags](const gh::Request&, gh::Response& res) {
        res.status = 101;
        res.set_header("Connection", "Upgrade");
        res.set_header("Upgrade", "test");
        gh::Response::TakenOver t = res.take_over();
        flags.set_value(t.fd >= 0 ? ::fcntl(t.fd, F_GETFL) : -1);
    });
    srv.get("/", [](const gh::Request&, gh::Response& res) { res.text("hi\n"); });
    listen_local(srv);
    support::Running run(srv);
    Client c;
    first_request(srv, c); // the socket has been through the blocking idle read
    REQUIRE(c.send("GET /up HTTP/1.1\r\nHost: t\r\n\r\n"));
    REQUIRE(got.wait_for(slack()) == std::future_status::ready);
    int f = got.get();
    REQUIRE(f >= 0);
    CHECK((f & O_NONBLOCK) != 0);
}

namespace {

// Holds the acceptor before its accept() while g_accept_hold is set, as a
// core busy with hundreds of connection threads would (issue 14).
std::atomic<Gate*> g_accept_hold{nullptr};

void hold_acceptor() {
    if (Gate* g = g_accept_hold.load()) {
        g->arrive();
        g->wait();
    }
}

struct AcceptHoldGuard {
    explicit AcceptHoldGuard(Gate* g) {
        g_accept_hold = g;
        gh::detail::accept_hook() = &hold_acceptor;
    }
    void release() {
        if (Gate* g = g_accept_hold.exchange(nullptr)) g->open();
    }
    ~AcceptHoldGuard() {
        release();
        gh::detail::accept_hook() = nullptr;
    }
};

// Keeps `a` busy with requests until `done()` or the slack bound; false
// on a failed request or at the bound.
template <class Done>
bool requests_until(Client& a, Done done) {
    auto deadline = support::Clock::now() + slack();
    while (!done()) {
        if (support::Clock::now() > deadline) return false;
        if (!a.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")) return false;
        if (a.read_response().status != 200) return false;
    }
    return true;
}

// GET / for the busy client, GET /b counting the clients served while the
// acceptor is held.
void add_routes(gh::Server& srv, std::atomic<int>& b_served) {
    srv.get("/", [](const gh::Request&, gh::Response& res) { res.text("hi\n"); });
    srv.get("/b", [&b_served](const gh::Request&, gh::Response& res) {
        ++b_served;
        res.text("b\n");
    });
}

} // namespace

TEST_CASE("threads: a busy connection thread accepts for a held acceptor", "[threads]") {
    std::atomic<int> b_served{0};
    gh::Server srv;
    add_routes(srv, b_served);
    listen_local(srv);
    support::Running run(srv);
    Client a;
    first_request(srv, a); // accepted by the acceptor
    Gate held;
    AcceptHoldGuard guard(&held);
    Client b;
    REQUIRE(b.connect(srv.port()));
    REQUIRE(b.send("GET /b HTTP/1.1\r\nHost: t\r\n\r\n"));
    REQUIRE(held.wait_arrived(1)); // the acceptor saw b and is held before its accept()
    // Only a's requests run now; between two of them a's thread accepts b.
    CHECK(requests_until(a, [&] { return b_served.load() == 1; }));
    support::Response rb = b.read_response();
    CHECK(rb.status == 200);
    CHECK(rb.body == "b\n");
    CHECK(held.arrived() == 1); // still inside the hook: it accepted nothing
    CHECK(srv.stats().connections_total == 2);
    guard.release();
    gh::ShutdownReport rep = srv.shutdown(slack());
    CHECK(rep.drained);
}

TEST_CASE("threads: with helpers accepting, max_connections still holds exactly", "[threads]") {
    gh::Options opt;
    opt.max_connections = 4;
    gh::Server srv(opt);
    std::atomic<int> open{0}, most{0};
    srv.on_conn_state([&](std::uint64_t, gh::ConnState s) {
        if (s == gh::ConnState::fresh) {
            int now = ++open;
            int m = most.load();
            while (now > m && !most.compare_exchange_weak(m, now)) {
            }
        } else if (s == gh::ConnState::closed) {
            --open;
        }
    });
    std::atomic<int> b_served{0};
    add_routes(srv, b_served);
    listen_local(srv);
    support::Running run(srv);
    Client a;
    first_request(srv, a);
    Gate held;
    AcceptHoldGuard guard(&held);
    const int kQueued = 6;
    std::vector<Client> bs(kQueued);
    for (auto& b : bs) {
        REQUIRE(b.connect(srv.port()));
        REQUIRE(b.send("GET /b HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    bool arrived = held.wait_arrived(1);
    INFO("connections_total " << srv.stats().connections_total << ", b_served " << b_served.load()
         << ", active " << srv.stats().active_connections);
    REQUIRE(arrived);
    // Helpers leave one place for the acceptor's accept in flight: with a
    // open they take two more (3 of 4), and no further however long a runs.
    CHECK(requests_until(a, [&] { return b_served.load() == 2; }));
    auto until = support::Clock::now() + std::chrono::milliseconds(50); // ~50 helper turns
    CHECK(requests_until(a, [&] { return support::Clock::now() > until; }));
    CHECK(b_served.load() == 2);
    CHECK(srv.stats().active_connections == 3);
    guard.release(); // the acceptor takes the fourth place, then waits at the cap
    a.close();
    int answered = 0;
    for (auto& b : bs) {
        support::Response r = b.read_response();
        if (r.status == 200 && r.body == "b\n") ++answered;
        b.close(); // frees a place for the next one
    }
    CHECK(answered == kQueued);
    CHECK(most.load() <= 4);
    CHECK(srv.stats().connections_total == 1 + kQueued);
}
