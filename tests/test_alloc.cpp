// The request path does not allocate: once a keep-alive connection is
// warm, serving a request reuses the connection's buffers (request head,
// Request, Response and their strings, route captures, body buffers up to
// 64 KiB). Counted by replacing the global operator new for this test
// binary; only allocations made on the server's connection threads count.
#include <catch2/catch.hpp>

#include "support.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace gh = graceful_http;
using support::Client;

namespace {

// Set on a thread by the test's handlers: that thread is a connection
// thread of the server under test, and its allocations are counted.
thread_local bool t_counted = false;
std::atomic<long> g_allocations{0};
std::atomic<std::size_t> g_largest{0}; // the largest counted allocation, in bytes
std::atomic<std::size_t> g_bytes{0};   // counted bytes in all

void* counted_malloc(std::size_t n) noexcept {
    if (t_counted) {
        g_allocations.fetch_add(1, std::memory_order_relaxed);
        g_bytes.fetch_add(n, std::memory_order_relaxed);
        std::size_t was = g_largest.load(std::memory_order_relaxed);
        while (n > was && !g_largest.compare_exchange_weak(was, n, std::memory_order_relaxed)) {
        }
    }
    return std::malloc(n == 0 ? 1 : n);
}

void* counted_alloc(std::size_t n) {
    if (void* p = counted_malloc(n)) return p;
#if defined(__cpp_exceptions)
    throw std::bad_alloc();
#else
    std::abort();
#endif
}

} // namespace

// Every form that pairs with the plain delete is replaced, so that new and
// delete always agree (AddressSanitizer checks they do).
void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

std::string request(const std::string& method, const std::string& target, const std::string& body) {
    std::string r = method + " " + target + " HTTP/1.1\r\nHost: test\r\nUser-Agent: alloc-test/1.0\r\n";
    if (!body.empty()) r += "Content-Type: application/octet-stream\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n";
    return r + "\r\n" + body;
}

} // namespace

TEST_CASE("hot path: a warm keep-alive connection serves requests without allocating", "[perf]") {
    gh::Options opt;
    opt.spare_threads = 0;
    gh::Server srv(opt);
    srv.get("/", [](const gh::Request&, gh::Response& res) {
        t_counted = true;
        res.text("hello, world\n");
    });
    srv.get("/items/{id}", [](const gh::Request& req, gh::Response& res) {
        t_counted = true;
        res.set_header("Cache-Control", "no-store, max-age=0, must-revalidate");
        res.set_header("X-Item", req.param("id"));
        res.text(req.query_param("verbose") == "1" ? "item, verbose\n" : "item\n");
    });
    srv.post("/echo", [](const gh::Request& req, gh::Response& res) {
        t_counted = true;
        const std::string& body = req.body();
        res.text(body, "application/octet-stream");
    });
    srv.get("/alloc", [](const gh::Request&, gh::Response& res) {
        t_counted = true;
        auto* scratch = new std::vector<char>(100); // an allocation per request
        res.text(std::string(scratch->begin(), scratch->end()));
        delete scratch;
    });
    gh::Error err = srv.listen("127.0.0.1", 0);
    REQUIRE_FALSE(static_cast<bool>(err));
    support::Running running(srv);

    const std::string small(1000, 's');
    const std::string big(64 * 1024, 'b');
    const std::string requests[] = {
        request("GET", "/", ""),
        request("GET", "/items/42?verbose=1&fields=name,price,stock", ""),
        request("POST", "/echo", small),
        request("POST", "/echo", big),
        request("GET", "/items/7", ""),
    };
    const std::string* bodies[] = {nullptr, nullptr, &small, &big, nullptr};

    Client c;
    REQUIRE(c.connect(srv.port()));
    auto round = [&] {
        for (std::size_t i = 0; i < 5; ++i) {
            REQUIRE(c.send(requests[i]));
            support::Response r = c.read_response();
            REQUIRE(r.outcome == support::Outcome::ok);
            REQUIRE(r.status == 200);
            if (bodies[i]) REQUIRE(r.body == *bodies[i]);
        }
    };
    for (int i = 0; i < 3; ++i) round(); // warm: buffers grow to their working size

    const int rounds = 40; // 200 requests
    long before = g_allocations.load();
    for (int i = 0; i < rounds; ++i) round();
    long during = g_allocations.load() - before;
    INFO("allocations on the connection thread during " << rounds * 5 << " requests: " << during);
    // Zero is what we measure; a stray buffer growth is tolerated, one
    // allocation per request (200) or per round (40) is not.
    CHECK(during < 5);

    // The counter does count: a handler that allocates shows up, once per request.
    long before_alloc = g_allocations.load();
    for (int i = 0; i < 10; ++i) {
        REQUIRE(c.send(request("GET", "/alloc", "")));
        REQUIRE(c.read_response().status == 200);
    }
    CHECK(g_allocations.load() - before_alloc >= 10);
}

TEST_CASE("a huge Content-Length is refused with 413 before any memory is reserved for it", "[perf]") {
    gh::Options opt;
    opt.spare_threads = 0;
    gh::Server srv(opt); // max_body_bytes: the default 8 MiB
    // on_conn_state runs on the connection's own thread: count from its first state
    support::Gate closed; // arrivals: connections that reached ConnState::closed
    srv.on_conn_state([&](std::uint64_t, gh::ConnState state) {
        t_counted = true;
        if (state == gh::ConnState::closed) closed.arrive();
    });
    srv.post("/echo", [](const gh::Request& req, gh::Response& res) {
        res.text(req.body(), "application/octet-stream");
    });
    gh::Error err = srv.listen("127.0.0.1", 0);
    REQUIRE_FALSE(static_cast<bool>(err));
    support::Running running(srv);

    g_largest = 0;
    g_bytes = 0;
    {
        Client c;
        REQUIRE(c.connect(srv.port()));
        REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == support::Outcome::ok);
        CHECK(r.status == 413);
        CHECK(c.wait_closed());
    }
    REQUIRE(closed.wait_arrived(1)); // the connection thread is done with it
    INFO("largest allocation " << g_largest.load() << " B, " << g_bytes.load() << " B in all");
    CHECK(g_largest.load() < 64 * 1024);
    CHECK(g_bytes.load() < 256 * 1024);

    // The same counters see a body's reservation once one is accepted.
    g_largest = 0;
    {
        const std::string body(900 * 1000, 'x');
        Client c;
        REQUIRE(c.connect(srv.port()));
        REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == support::Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body.size() == body.size());
    }
    CHECK(g_largest.load() >= 900 * 1000);
}
