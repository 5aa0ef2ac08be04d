// Streamed request bodies ([body]) and forms ([forms]): Request::read_body,
// RouteOptions::max_body_bytes, parse_urlencoded, read_form and the
// streaming read_multipart, all over real loopback sockets; the demo's
// /upload and /form with curl and python3.
#include "support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BODY_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BODY_SANITIZED 1
#endif
#endif
#ifndef BODY_SANITIZED
#define BODY_SANITIZED 0
#endif

namespace {

namespace gh = graceful_http;
using support::Client;
using support::Clock;
using support::ms;
using support::Outcome;
using support::slack;

// The full-size proof in the plain build; sanitizers (10x slower) stream less.
constexpr std::uint64_t kBigUpload = BODY_SANITIZED ? (64ull << 20) : (1ull << 30);

// A body pattern with a period that no piece size divides, so a piece
// delivered twice, dropped or misplaced is caught.
const std::string& pattern() {
    static const std::string p = [] {
        std::string s(1024 * 1024 + 7, '\0');
        std::uint32_t x = 12345;
        for (char& c : s) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
        return s;
    }();
    return p;
}

// matches: is `piece` the pattern's bytes from `offset` on?
bool matches(std::string_view piece, std::uint64_t offset) {
    const std::string& p = pattern();
    while (!piece.empty()) {
        std::size_t at = static_cast<std::size_t>(offset % p.size());
        std::size_t n = std::min(piece.size(), p.size() - at);
        if (std::memcmp(piece.data(), p.data() + at, n) != 0) return false;
        piece.remove_prefix(n);
        offset += n;
    }
    return true;
}

// send_body writes the pattern's bytes [from, total), Content-Length or
// chunked (chunks of at most `chunk` bytes; the last chunk when complete).
bool send_body(Client& c, std::uint64_t total, bool chunked, std::size_t chunk = 65536,
               std::uint64_t from = 0) {
    const std::string& p = pattern();
    std::uint64_t sent = from;
    while (sent < total) {
        std::size_t at = static_cast<std::size_t>(sent % p.size());
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(
            {total - sent, p.size() - at, chunk}));
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", n);
        if (chunked && !c.send(size)) return false;
        // Straight from the pattern: no temporary (ASan's quarantine would count it as RSS).
        for (std::size_t off = 0; off < n;) {
            ssize_t w = ::send(c.fd(), p.data() + at + off, n - off, MSG_NOSIGNAL);
            if (w <= 0) return false;
            off += static_cast<std::size_t>(w);
        }
        if (chunked && !c.send("\r\n")) return false;
        sent += n;
    }
    return !chunked || c.send("0\r\n\r\n");
}

std::string head(const std::string& method, const std::string& path, std::uint64_t length,
                 bool chunked, const std::string& extra = "") {
    return method + " " + path + " HTTP/1.1\r\nHost: t\r\n" + extra +
           (chunked ? "Transfer-Encoding: chunked\r\n"
                    : "Content-Length: " + std::to_string(length) + "\r\n") +
           "\r\n";
}

long vm_rss_kib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return -1;
}

// Sink is what the upload route saw: bytes, pieces, the largest piece,
// whether every byte matched the pattern, and the peak RSS while reading.
struct Sink {
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<std::size_t> max_piece{0};
    std::atomic<bool> intact{true};
    std::atomic<bool> read_ok{false};
    std::atomic<int> error{0};
    std::atomic<long> peak_rss{0};
    support::Gate started; // the handler has its first piece
    support::Gate finished;
};

gh::Handler upload_handler(Sink& s, support::Gate* hold = nullptr) {
    return [&s, hold](const gh::Request& req, gh::Response& res) {
        std::uint64_t n = 0, next_sample = 0;
        std::size_t maxp = 0;
        bool intact = true;
        bool ok = req.read_body([&](std::string_view piece) {
            if (n == 0) {
                s.started.arrive();
                if (hold) hold->wait();
            }
            intact = intact && matches(piece, n);
            n += piece.size();
            maxp = std::max(maxp, piece.size());
            if (n >= next_sample) { // every 16 MiB
                s.peak_rss = std::max(s.peak_rss.load(), vm_rss_kib());
                next_sample += 16u << 20;
            }
            return true;
        });
        s.bytes = n;
        s.max_piece = maxp;
        s.intact = intact;
        s.read_ok = ok;
        s.error = req.body_error();
        s.finished.arrive();
        if (ok) res.text("received " + std::to_string(n) + " bytes\n");
    };
}

gh::RouteOptions limit(std::size_t n) {
    gh::RouteOptions o;
    o.max_body_bytes = n;
    return o;
}

// A server on 127.0.0.1:0 serving on its own thread.
struct Fixture {
    gh::Server srv;
    int port = 0;
    std::unique_ptr<support::Running> running;
    explicit Fixture(gh::Options o = gh::Options()) : srv(o) {}
    void start() {
        REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
        port = srv.port();
        running = std::make_unique<support::Running>(srv);
    }
};

gh::Options small_global() {
    gh::Options o;
    o.max_body_bytes = 1024; // the routes under test lift or tighten it
    return o;
}

// ---------------------------------------------------------------- [body]

TEST_CASE("body: read_body streams Content-Length and chunked bodies in pieces of <= 64 KiB",
          "[body]") {
    Sink s;
    Fixture f(small_global());
    f.srv.put("/upload", upload_handler(s), limit(0));
    f.srv.put("/buffered", [](const gh::Request& req, gh::Response& res) {
        res.text(std::to_string(req.body().size()));
    });
    f.start();
    for (bool chunked : {false, true}) {
        INFO((chunked ? "chunked" : "Content-Length"));
        constexpr std::uint64_t kSize = 5u << 20; // 5000 x the server's max_body_bytes
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send(head("PUT", "/upload", kSize, chunked)));
        REQUIRE(send_body(c, kSize, chunked, chunked ? 100000 : 65536));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body == "received " + std::to_string(kSize) + " bytes\n");
        CHECK(s.bytes == kSize);
        CHECK(s.intact);
        CHECK(s.max_piece <= 64u * 1024 + 64); // the chunked decoder appends what `in` holds
        CHECK(s.read_ok);
        // keep-alive: the next request on the same connection is served
        REQUIRE(c.send(head("PUT", "/buffered", 10, false) + "0123456789"));
        r = c.read_response();
        CHECK(r.status == 200);
        CHECK(r.body == "10");
    }
    // The server's own limit still holds on a route without RouteOptions.
    support::Response r = support::request(f.port, "PUT", "/buffered", std::string(2000, 'x'));
    CHECK(r.status == 413);
}

TEST_CASE("body: a huge upload streams with bounded memory (1 GiB adds < 16 MiB RSS)",
          "[body]") {
    Sink s;
    Fixture f(small_global());
    f.srv.put("/upload", upload_handler(s), limit(0));
    f.start();
    for (bool chunked : {false, true}) {
        // chunked costs the client framing per 64 KiB: a quarter of the size
        std::uint64_t size = chunked ? kBigUpload / 4 : kBigUpload;
        INFO((chunked ? "chunked, " : "Content-Length, ") << size << " bytes");
        s.peak_rss = 0;
        long before = vm_rss_kib();
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send(head("PUT", "/upload", size, chunked)));
        auto t0 = Clock::now();
        REQUIRE(send_body(c, size, chunked));
        support::Response r = c.read_response(ms(120000));
        long secs = support::elapsed_ms(t0);
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(s.bytes == size);
        CHECK(s.intact);
        long grew = std::max(s.peak_rss.load(), vm_rss_kib()) - before;
        WARN("streamed " << (size >> 20) << " MiB in " << secs << " ms; RSS grew " << grew
                         << " KiB (peak " << s.peak_rss << " KiB)");
        CHECK(grew < 16 * 1024);
    }
}

TEST_CASE("body: the route's limit gives 413, before reading when Content-Length says so",
          "[body]") {
    Sink s;
    std::atomic<int> calls{0};
    Fixture f; // the server allows 8 MiB; the route only 1000 bytes
    f.srv.post("/small", [&](const gh::Request& req, gh::Response& res) {
        ++calls;
        upload_handler(s)(req, res);
    }, limit(1000));
    f.srv.post("/streaming", [](const gh::Request& req, gh::Response& res) {
        res.begin_stream();
        req.read_body([](std::string_view) { return true; });
        res.write(std::to_string(req.body_error()));
    }, limit(1000));
    f.start();
    SECTION("Content-Length over the limit, with 100-continue: 413, no 100, no handler") {
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send(head("POST", "/small", 1001, false, "Expect: 100-continue\r\n")));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 413);
        CHECK(r.closes());
        CHECK(calls == 0);
    }
    SECTION("exactly the limit is read") {
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send(head("POST", "/small", 1000, false)));
        REQUIRE(send_body(c, 1000, false));
        support::Response r = c.read_response();
        CHECK(r.status == 200);
        CHECK(s.bytes == 1000);
    }
    SECTION("past the limit after the response began: the response ends, then close") {
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send(head("POST", "/streaming", 0, true)));
        REQUIRE(send_body(c, 3000, true, 600));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200); // already sent: it cannot become a 413
        CHECK(r.body == "413");
        CHECK(c.wait_closed()); // the rest of the body is never parsed as a request
    }
    SECTION("chunked past the limit mid-stream: 413 (nothing was sent yet), then close") {
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send(head("POST", "/small", 0, true)));
        REQUIRE(send_body(c, 3000, true, 600));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 413);
        CHECK(r.closes());
        CHECK(calls == 1);
        CHECK_FALSE(s.read_ok);
        CHECK(s.error == 413);
        CHECK(s.bytes <= 1000);
        CHECK(c.wait_closed());
    }
}

TEST_CASE("body: 100 Continue is sent only when the handler starts reading", "[body]") {
    Sink s;
    support::Gate reading; // the handler may start reading
    Fixture f;
    f.srv.put("/upload", [&](const gh::Request& req, gh::Response& res) {
        reading.wait();
        upload_handler(s)(req, res);
    }, limit(0));
    f.srv.put("/ignore", [](const gh::Request&, gh::Response& res) { res.text("ignored\n"); });
    f.start();
    SECTION("a handler that reads: 100, then the final response") {
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send(head("PUT", "/upload", 100000, false, "Expect: 100-continue\r\n")));
        // Nothing may arrive while the handler holds off reading.
        CHECK(c.fill(Clock::now() + ms(300)) == Outcome::timeout);
        reading.open();
        support::Response cont = c.read_response();
        REQUIRE(cont.outcome == Outcome::ok);
        CHECK(cont.status == 100);
        REQUIRE(send_body(c, 100000, false));
        support::Response r = c.read_response();
        CHECK(r.status == 200);
        CHECK(s.bytes == 100000);
        CHECK(s.intact);
    }
    SECTION("a handler that does not read: no 100, the response, and close") {
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send(head("PUT", "/ignore", 100000, false, "Expect: 100-continue\r\n")));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.closes());
    }
}

TEST_CASE("body: on_data returning false stops the read; the rest is discarded or closed",
          "[body]") {
    Fixture f;
    std::atomic<std::uint64_t> seen{0};
    f.srv.put("/first", [&](const gh::Request& req, gh::Response& res) {
        std::uint64_t n = 0;
        bool done = req.read_body([&](std::string_view piece) {
            n += piece.size();
            return false; // one piece is enough
        });
        seen = n;
        // stopping is not an error (checked on the client side: Catch is single-threaded)
        res.text(done ? "done\n" : req.body_error() == 0 ? "stopped\n" : "error\n");
    }, limit(0));
    f.srv.get("/hello", [](const gh::Request&, gh::Response& res) { res.text("hello"); });
    f.start();
    for (bool chunked : {false, true}) {
        INFO((chunked ? "chunked" : "Content-Length"));
        // A small rest (< 256 KiB) is discarded: the connection lives on.
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send(head("PUT", "/first", 200000, chunked)));
        REQUIRE(send_body(c, 200000, chunked, 50000));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.body == "stopped\n");
        CHECK(seen > 0);
        CHECK(seen < 200000);
        CHECK_FALSE(r.closes());
        REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
        r = c.read_response();
        CHECK(r.body == "hello");
    }
    // A big rest closes the connection after the response.
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send(head("PUT", "/first", 10u << 20, false)));
    std::thread writer([&] { (void)send_body(c, 10u << 20, false); }); // may fail at the close
    support::Response r = c.read_response();
    CHECK(r.body == "stopped\n");
    CHECK(r.closes());
    writer.join();
}

TEST_CASE("body: a client that vanishes mid-upload ends the read with an error, nothing leaks",
          "[body]") {
    Sink s;
    Fixture f;
    f.srv.put("/upload", upload_handler(s), limit(0));
    f.start();
    for (bool reset : {false, true}) {
        INFO((reset ? "reset" : "FIN"));
        s.read_ok = true;
        int arrived = s.finished.arrived();
        {
            Client c;
            REQUIRE(c.connect(f.port));
            REQUIRE(c.send(head("PUT", "/upload", 1u << 30, false)));
            REQUIRE(send_body(c, 300000, false));
            REQUIRE(s.started.wait_arrived(arrived + 1));
            if (reset) c.abort();
            else c.close();
        }
        REQUIRE(s.finished.wait_arrived(arrived + 1));
        CHECK_FALSE(s.read_ok);
        CHECK(s.error == 400);
        CHECK(s.bytes <= 300000);
        CHECK(support::eventually([&] { return f.srv.stats().active_connections == 0; }));
        support::Response r = support::request(f.port, "PUT", "/upload", "abc");
        CHECK(r.status == 200);
        CHECK(r.body == "received 3 bytes\n");
    }
}

TEST_CASE("body: shutdown mid-upload lets the upload finish within the grace period", "[body]") {
    Sink s;
    support::Gate hold; // the handler holds its first piece until the drain began
    Fixture f;
    f.srv.put("/upload", upload_handler(s, &hold), limit(0));
    f.start();
    constexpr std::uint64_t kSize = 8u << 20;
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send(head("PUT", "/upload", kSize, false)));
    REQUIRE(send_body(c, 100000, false));
    REQUIRE(s.started.wait_arrived(1));
    gh::ShutdownReport report;
    std::thread stopper([&] { report = f.srv.shutdown(ms(60000)); });
    REQUIRE(support::eventually([&] { return f.srv.is_shutting_down(); }));
    hold.open();
    REQUIRE(send_body(c, kSize, false, 65536, 100000)); // the rest
    support::Response r = c.read_response();
    stopper.join();
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(r.closes()); // served during the drain
    CHECK(s.bytes == kSize);
    CHECK(s.read_ok);
    CHECK(report.drained);
    CHECK(report.connections_forced == 0);
}

TEST_CASE("body: read_timeout bounds a streamed body (408); body() then read_body() is one piece",
          "[body]") {
    gh::Options o;
    o.read_timeout = ms(300);
    Sink s;
    Fixture f(o);
    f.srv.put("/upload", upload_handler(s), limit(0));
    f.srv.put("/both", [](const gh::Request& req, gh::Response& res) {
        std::string whole = req.body();
        std::vector<std::string> pieces;
        bool ok = req.read_body([&](std::string_view p) { return pieces.emplace_back(p), true; });
        res.text(std::to_string(ok) + " " + std::to_string(pieces.size()) + " " +
                 (pieces.size() == 1 && pieces[0] == whole ? "same" : "differs"));
    });
    f.start();
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send(head("PUT", "/upload", 1000000, false)));
    REQUIRE(send_body(c, 1000, false)); // and then nothing
    support::Response r = c.read_response();
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.status == 408);
    CHECK(s.error == 408);
    r = support::request(f.port, "PUT", "/both", "some body");
    CHECK(r.body == "1 1 same");
}

// ---------------------------------------------------------------- [forms]

TEST_CASE("forms: parse_urlencoded decodes in order, '+' as space; a bad escape fails",
          "[forms]") {
    gh::FormFields out{{"stale", "x"}};
    REQUIRE(gh::parse_urlencoded("a=1&b=x+y%21&&c&d=&=e&a=2", out));
    gh::FormFields want{{"a", "1"}, {"b", "x y!"}, {"c", ""}, {"d", ""}, {"", "e"}, {"a", "2"}};
    CHECK(out == want);
    CHECK(gh::parse_urlencoded("", out));
    CHECK(out.empty());
    CHECK_FALSE(gh::parse_urlencoded("a=%zz", out));
    CHECK_FALSE(gh::parse_urlencoded("a=%4", out));
    CHECK_FALSE(gh::parse_urlencoded("a%00=1", out)); // a decoded NUL
}

// The multipart route: one line per part, as the demo answers.
gh::Handler multipart_handler(gh::MultipartLimits limits = {}) {
    return [limits](const gh::Request& req, gh::Response& res) {
        std::string out;
        std::uint64_t size = 0;
        const gh::MultipartPart* part = nullptr;
        gh::MultipartCallbacks cb;
        cb.on_part = [&](const gh::MultipartPart& p) { part = &p; size = 0; return true; };
        cb.on_data = [&](std::string_view d) {
            if (!part->has_filename) out.append(d);
            size += d.size();
            return true;
        };
        cb.on_part_end = [&] {
            if (part->has_filename)
                out += part->name + ": " + part->filename + " " + std::to_string(size) +
                       " bytes (" + part->content_type + ")";
            out += "|" + part->name + "\n";
            return true;
        };
        gh::FormResult r = gh::read_multipart(req, cb, limits);
        res.status = r.ok() ? 200 : r.http_status;
        res.text(r.ok() ? out : std::to_string(r.http_status) + "\n");
    };
}

std::string part(const std::string& b, const std::string& disposition, const std::string& body,
                 const std::string& extra = "") {
    return "--" + b + "\r\nContent-Disposition: " + disposition + "\r\n" + extra + "\r\n" + body +
           "\r\n";
}

support::Response post_multipart(int port, const std::string& content_type,
                                 const std::string& body, const std::string& path = "/mp") {
    return support::request(port, "POST", path, body, "Content-Type: " + content_type + "\r\n");
}

TEST_CASE("forms: read_multipart streams fields and files; read_form takes query and body",
          "[forms]") {
    Fixture f;
    f.srv.post("/mp", multipart_handler(), limit(0));
    f.srv.post("/form", [](const gh::Request& req, gh::Response& res) {
        gh::FormFields fields;
        gh::FormResult r = gh::read_form(req, fields);
        std::string out;
        for (auto& kv : fields) out += kv.first + "=" + kv.second + "\n";
        res.status = r.ok() ? 200 : r.http_status;
        res.text(out);
    });
    f.start();
    const std::string b = "----xYz'()+_,-./:=?";
    std::string file(200000, '\0');
    for (std::size_t i = 0; i < file.size(); ++i) file[i] = static_cast<char>(i * 7 % 256);
    file.replace(5000, 4 + b.size() - 1, "\r\n--" + b.substr(0, b.size() - 1)); // almost a delimiter
    std::string body = "preamble\r\n" + part(b, "form-data; name=\"a\"", "1") +
                       part(b, "form-data; name=\"note\"", "line\r\nwith -- dashes") +
                       part(b, "form-data; name=\"f\"; filename=\"C:\\dir\\x \\\"y\\\".bin\"",
                            file, "Content-Type: application/octet-stream\r\n") +
                       "--" + b + "--  \r\nepilogue";
    support::Response r = post_multipart(f.port, "multipart/form-data; boundary=\"" + b + "\"", body);
    CHECK(r.status == 200);
    CHECK(r.body == "1|a\nline\r\nwith -- dashes|note\n"
                    "f: C:\\dir\\x \"y\".bin 200000 bytes (application/octet-stream)|f\n");
    // The same body sent slowly, a few bytes per packet, parses the same.
    Client c;
    REQUIRE(c.connect(f.port));
    std::string req = "POST /mp HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=\"" +
                      b + "\"\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    REQUIRE(c.send(req));
    for (std::size_t i = 0; i < 400; i += 3) REQUIRE(c.send(body.substr(i, 3)));
    REQUIRE(c.send(body.substr(402)));
    support::Response slow = c.read_response();
    CHECK(slow.body == r.body);

    r = support::request(f.port, "POST", "/form?q=1&sp=a+b", "x=%C3%A9&y=2",
                         "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n");
    CHECK(r.status == 200);
    CHECK(r.body == "q=1\nsp=a b\nx=\xC3\xA9\ny=2\n");
    r = support::request(f.port, "POST", "/form?q=1", "x=1", "Content-Type: text/plain\r\n");
    CHECK(r.body == "q=1\n"); // not a form body: only the query
    r = support::request(f.port, "POST", "/form", "x=%G1",
                         "Content-Type: application/x-www-form-urlencoded\r\n");
    CHECK(r.status == 400);
}

TEST_CASE("forms: malformed multipart gets 400, limits 413, another type 415", "[forms]") {
    Fixture f;
    gh::MultipartLimits lim;
    lim.max_parts = 3;
    lim.max_part_header_bytes = 256;
    f.srv.post("/mp", multipart_handler(lim), limit(0));
    f.start();
    const std::string b = "BOUND";
    const std::string ct = "multipart/form-data; boundary=" + b;
    std::string ok = part(b, "form-data; name=a", "1") + "--" + b + "--";
    REQUIRE(post_multipart(f.port, ct, ok).status == 200);
    struct Case {
        const char* what;
        std::string content_type, body;
        int status;
    };
    std::vector<Case> cases = {
        {"no boundary parameter", "multipart/form-data", ok, 400},
        {"empty boundary", "multipart/form-data; boundary=", ok, 400},
        {"boundary of 71 chars", "multipart/form-data; boundary=" + std::string(71, 'a'), ok, 400},
        {"boundary with a bad char", "multipart/form-data; boundary=a@b", ok, 400},
        {"unterminated quoted boundary", "multipart/form-data; boundary=\"BOUND", ok, 400},
        {"not multipart", "text/plain", ok, 415},
        {"another boundary in the body", "multipart/form-data; boundary=OTHER", ok, 400},
        {"truncated: no close delimiter", ct, part(b, "form-data; name=a", "1"), 400},
        {"truncated inside a part", ct, "--" + b + "\r\nContent-Disposition: form-data; name=a\r\n\r\nab", 400},
        {"empty body", ct, "", 400},
        {"part without Content-Disposition", ct,
         "--" + b + "\r\nContent-Type: text/plain\r\n\r\nx\r\n--" + b + "--", 400},
        {"Content-Disposition without name", ct, part(b, "form-data; filename=x", "1") + "--" + b + "--", 400},
        {"not form-data", ct, part(b, "attachment; name=a", "1") + "--" + b + "--", 400},
        {"part header without colon", ct, "--" + b + "\r\nbogus\r\n\r\nx\r\n--" + b + "--", 400},
        {"garbage after the delimiter", ct, "--" + b + "xx\r\n", 400},
        {"too many parts", ct,
         part(b, "form-data; name=a", "1") + part(b, "form-data; name=b", "2") +
             part(b, "form-data; name=c", "3") + part(b, "form-data; name=d", "4") + "--" + b + "--",
         413},
        {"part header too big", ct,
         part(b, "form-data; name=a", "1", "X-Pad: " + std::string(300, 'p') + "\r\n") + "--" + b + "--",
         413},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        support::Response r = post_multipart(f.port, c.content_type, c.body);
        CHECK(r.outcome == Outcome::ok);
        CHECK(r.status == c.status);
    }
}

TEST_CASE("forms: MultipartParser gives the same parts however the body is split", "[forms]") {
    const std::string body = "--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
                             "--zz\r\nContent-Disposition: form-data; name=f; filename=\"x.txt\"\r\n"
                             "Content-Type: text/plain\r\n\r\nhello\r\n--z\r\n--zz--";
    auto parse = [&](std::size_t step) {
        std::string log;
        gh::MultipartCallbacks cb;
        cb.on_part = [&](const gh::MultipartPart& p) {
            log += "[" + p.name + "|" + p.filename + "|" + std::to_string(p.has_filename) + "|" +
                   p.content_type + "]";
            return true;
        };
        cb.on_data = [&](std::string_view d) { return log.append(d), true; };
        cb.on_part_end = [&] { return log += "/", true; };
        gh::detail::MultipartParser p("zz", gh::MultipartLimits{}, cb);
        for (std::size_t i = 0; i < body.size(); i += step) REQUIRE(p.feed(body.substr(i, step)).ok());
        CHECK(p.finish().ok());
        return log;
    };
    const std::string want = "[a||0|]1/[f|x.txt|1|text/plain]hello\r\n--z/";
    for (std::size_t step : {body.size(), std::size_t(1), std::size_t(2), std::size_t(7)}) {
        INFO("pieces of " << step);
        CHECK(parse(step) == want);
    }
}

// ---------------------------------------------------------------- the demo

// run: a shell command's stdout (curl, python3), or "" if it failed.
std::string run(const std::string& cmd) {
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
        char buf[4096];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        if (::pclose(p) != 0) out += "[exit non-zero]";
    }
    return out;
}

TEST_CASE("body: demo_server /upload and /form with curl and python3", "[body][forms]") {
    support::Demo demo({"--port", "0"});
    REQUIRE(demo.port() > 0);
    std::string url = "http://127.0.0.1:" + std::to_string(demo.port());
    const std::string mib = BODY_SANITIZED ? "8" : "64";
    std::string bytes = std::to_string(std::stoul(mib) << 20);
    // curl -T from a pipe sends chunked; from a file, Content-Length.
    CHECK(run("head -c " + bytes + " /dev/zero | curl -sS -T - " + url + "/upload") ==
          "received " + bytes + " bytes\n");
    std::string tmp = "build/h_body_upload.bin";
    REQUIRE(run("head -c 3000000 /dev/urandom > " + tmp + " && echo ok") == "ok\n");
    CHECK(run("curl -sS -T " + tmp + " " + url + "/upload") == "received 3000000 bytes\n");
    CHECK(run("curl -sS -X POST -H 'Transfer-Encoding: chunked' --data-binary @" + tmp + " " +
              url + "/upload") == "received 3000000 bytes\n");
    CHECK(run("curl -sS -F a=1 -F 'b=hello world' -F f=@" + tmp + " " + url + "/form") ==
          "a=1\nb=hello world\nf: h_body_upload.bin 3000000 bytes\n");
    CHECK(run("curl -sS --data-urlencode 'x=a b&c' --data-urlencode 'y=1+1' '" + url +
              "/form?q=%7E'") == "q=~\nx=a b&c\ny=1+1\n");
    CHECK(run("curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: multipart/form-data' "
              "--data x " + url + "/form") == "400");
    CHECK(run("printf -- '--zz\\r\\nContent-Disposition: form-data; name=a\\r\\n\\r\\nab' | "
              "curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: multipart/form-data; "
              "boundary=zz' --data-binary @- " + url + "/form") == "400");
    // python3: a generated chunked body (a generator: never in memory) and a form.
    std::string py =
        "import http.client,sys\n"
        "c=http.client.HTTPConnection('127.0.0.1'," + std::to_string(demo.port()) + ")\n"
        "c.request('PUT','/upload',body=(b'z'*65536 for _ in range(160)),"
        "encode_chunked=True,headers={'Transfer-Encoding':'chunked'})\n"
        "print(c.getresponse().read().decode(),end='')\n"
        "c.request('POST','/form',body='k=v&k2=%26',"
        "headers={'Content-Type':'application/x-www-form-urlencoded'})\n"
        "print(c.getresponse().read().decode(),end='')\n";
    std::ofstream(tmp + ".py") << py;
    CHECK(run("python3 " + tmp + ".py") == "received 10485760 bytes\nk=v\nk2=&\n");
    std::remove(tmp.c_str());
    std::remove((tmp + ".py").c_str());
}

} // namespace
