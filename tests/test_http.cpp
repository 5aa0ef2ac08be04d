// The HTTP/1.1 protocol layer, checked on the wire (RFC 9112, RFC 9110).
// Every test runs an in-process server on 127.0.0.1 (port 0) and talks to
// it over real sockets, sending exact bytes. Rejection tests also check
// that the rejected connection is closed and that the server still serves
// a normal request on a new connection.
#include "support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

namespace gh = graceful_http;
using support::Client;
using support::Clock;
using support::ms;
using support::Outcome;
using support::slack;
using namespace std::string_literals;

// ---------------------------------------------------------------- helpers

// printable renders bytes for failure messages.
std::string printable(const std::string& s, std::size_t max = 300) {
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < max; ++i) {
        unsigned char ch = static_cast<unsigned char>(s[i]);
        if (ch == '\r') out += "\\r";
        else if (ch == '\n') out += "\\n";
        else if (ch < 0x20 || ch >= 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", ch);
            out += b;
        } else out += static_cast<char>(ch);
    }
    if (s.size() > max) out += "...(" + std::to_string(s.size()) + " bytes)";
    return out;
}

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

std::string lower(std::string s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

bool contains_ci(const std::string& hay, const std::string& needle) {
    return lower(hay).find(lower(needle)) != std::string::npos;
}

// tokens splits a comma-separated field value into trimmed tokens.
std::set<std::string> tokens(const std::string& v) {
    std::set<std::string> out;
    std::stringstream ss(v);
    std::string t;
    while (std::getline(ss, t, ',')) {
        auto b = t.find_first_not_of(" \t");
        auto e = t.find_last_not_of(" \t");
        if (b != std::string::npos) out.insert(t.substr(b, e - b + 1));
    }
    return out;
}

// A response head parsed from raw bytes (for checks on exact framing).
struct Head {
    std::string status_line;
    int status = 0;
    std::vector<std::pair<std::string, std::string>> fields;
    int count(const std::string& name) const {
        int n = 0;
        for (auto& f : fields)
            if (lower(f.first) == lower(name)) ++n;
        return n;
    }
    std::string get(const std::string& name) const {
        for (auto& f : fields)
            if (lower(f.first) == lower(name)) return f.second;
        return "";
    }
};

// parse_head_at parses the response head starting at raw[pos] and moves
// pos past its blank line. False when the head is incomplete or malformed.
bool parse_head_at(const std::string& raw, std::size_t& pos, Head& h) {
    std::size_t end = raw.find("\r\n\r\n", pos);
    if (end == std::string::npos) return false;
    std::size_t eol = raw.find("\r\n", pos);
    h.status_line = raw.substr(pos, eol - pos);
    if (!starts_with(h.status_line, "HTTP/1.1 ") || h.status_line.size() < 12) return false;
    h.status = std::atoi(h.status_line.c_str() + 9);
    std::size_t p = eol + 2;
    while (p < end + 2) {
        std::size_t e = raw.find("\r\n", p);
        std::string line = raw.substr(p, e - p);
        std::size_t colon = line.find(':');
        if (colon == std::string::npos || colon == 0) return false;
        std::size_t v = line.find_first_not_of(" \t", colon + 1);
        std::size_t ve = line.find_last_not_of(" \t");
        h.fields.emplace_back(line.substr(0, colon),
                              v == std::string::npos ? "" : line.substr(v, ve - v + 1));
        p = e + 2;
    }
    pos = end + 4;
    return true;
}

// decode_chunked_at strictly decodes a chunked body (RFC 9112 §7.1)
// starting at raw[pos], through its last-chunk, trailer section and final
// CRLF; pos ends just past it. False on any deviation.
bool decode_chunked_at(const std::string& raw, std::size_t& pos, std::string& body,
                       int* data_chunks = nullptr) {
    int chunks = 0;
    for (;;) {
        std::size_t eol = raw.find("\r\n", pos);
        if (eol == std::string::npos) return false;
        std::string line = raw.substr(pos, eol - pos);
        std::size_t i = 0, n = 0;
        while (i < line.size() && std::isxdigit(static_cast<unsigned char>(line[i]))) {
            if (i >= 15) return false;
            char c = static_cast<char>(std::tolower(static_cast<unsigned char>(line[i])));
            n = n * 16 + static_cast<std::size_t>(c <= '9' ? c - '0' : c - 'a' + 10);
            ++i;
        }
        if (i == 0) return false;
        if (i < line.size() && line[i] != ';') return false;
        pos = eol + 2;
        if (n == 0) { // trailer section, then the final CRLF
            for (;;) {
                std::size_t e = raw.find("\r\n", pos);
                if (e == std::string::npos) return false;
                if (e == pos) {
                    pos += 2;
                    if (data_chunks) *data_chunks = chunks;
                    return true;
                }
                pos = e + 2;
            }
        }
        if (raw.size() < pos + n + 2) return false;
        body.append(raw, pos, n);
        pos += n;
        if (raw.compare(pos, 2, "\r\n") != 0) return false;
        pos += 2;
        ++chunks;
    }
}

// read_to_eof reads until the server closes (EOF or reset) or the bound
// passes; returns everything received. *closed tells which.
std::string read_to_eof(Client& c, bool* closed, ms bound = slack()) {
    auto deadline = Clock::now() + bound;
    *closed = false;
    for (;;) {
        Outcome o = c.fill(deadline);
        if (o == Outcome::eof || o == Outcome::reset) {
            *closed = true;
            break;
        }
        if (o == Outcome::timeout) break;
    }
    return c.buffer();
}

// nothing_arrives: true when no byte arrives within `quiet`. Used only as
// a negative check at a moment the server is known to be blocked.
bool nothing_arrives(Client& c, ms quiet) {
    std::size_t before = c.buffer().size();
    Outcome o = c.fill(Clock::now() + quiet);
    return o == Outcome::timeout && c.buffer().size() == before;
}

// ---------------------------------------------------------------- fixture

// Fixture: a Server with the routes every test uses, listening on
// 127.0.0.1:0 and serving on its own thread. `extra` adds routes or a
// not_found handler before listen().
struct Fixture {
    gh::Server srv;
    std::atomic<int> hello_calls{0};
    std::atomic<int> echo_calls{0};
    std::atomic<int> noread_calls{0};
    std::atomic<int> smuggled_calls{0};
    std::atomic<int> stream_failures{0};
    support::Gate gate;
    std::unique_ptr<support::Running> running;
    int port = 0;

    explicit Fixture(const gh::Options& opt = gh::Options{},
                     const std::function<void(gh::Server&)>& extra = nullptr)
        : srv(opt) {
        add_routes();
        if (extra) extra(srv);
        gh::Error err = srv.listen("127.0.0.1", 0);
        INFO("listen: " << err.message());
        REQUIRE_FALSE(static_cast<bool>(err));
        port = srv.port();
        REQUIRE(port > 0);
        running.reset(new support::Running(srv));
    }
    ~Fixture() {
        gate.open();     // never leave a handler blocked on our gate
        running.reset(); // shutdown(0) if still serving, then join
    }

    void add_routes() {
        srv.get("/hello", [this](const gh::Request&, gh::Response& res) {
            ++hello_calls;
            res.text("hello");
        });
        srv.get("/users/{id}", [](const gh::Request& req, gh::Response& res) {
            res.text("user=" + std::string(req.param("id")));
        });
        srv.get("/static/{path...}", [](const gh::Request& req, gh::Response& res) {
            res.text("static=" + std::string(req.param("path")));
        });
        srv.get("/things", [](const gh::Request&, gh::Response& res) { res.text("things"); });
        srv.post("/things", [](const gh::Request&, gh::Response& res) { res.text("posted"); });
        srv.post("/echo", [this](const gh::Request& req, gh::Response& res) {
            ++echo_calls;
            const std::string& b = req.body();
            if (!req.body_ok()) return; // the server answers with the error status
            res.text(b, "application/octet-stream");
        });
        srv.post("/noread", [this](const gh::Request&, gh::Response& res) {
            ++noread_calls;
            res.text("ignored");
        });
        srv.post("/gated", [this](const gh::Request& req, gh::Response& res) {
            gate.arrive();
            gate.wait();
            const std::string& b = req.body();
            if (!req.body_ok()) return;
            res.text("got:" + b);
        });
        srv.get("/smuggled", [this](const gh::Request&, gh::Response& res) {
            ++smuggled_calls;
            res.text("smuggled");
        });
        srv.get("/inspect/{rest...}", [](const gh::Request& req, gh::Response& res) {
            std::string out;
            out += "method=" + req.method + "\n";
            out += "target=" + req.target + "\n";
            out += "path=" + req.path + "\n";
            out += "query=" + req.query + "\n";
            out += "q=" + req.query_param("q") + "\n";
            out += "name=" + req.query_param("name") + "\n";
            out += "missing=" + req.query_param("missing") + "\n";
            out += "rest=" + std::string(req.param("rest")) + "\n";
            out += "h_lower=" + std::string(req.header("x-custom-thing")) + "\n";
            out += "h_upper=" + std::string(req.header("X-CUSTOM-THING")) + "\n";
            out += "has_mixed=" + std::to_string(req.has_header("x-CusTom-thing")) + "\n";
            out += "has_empty=" + std::to_string(req.has_header("x-empty")) + "\n";
            out += "empty=" + std::string(req.header("x-empty")) + "\n";
            out += "has_absent=" + std::to_string(req.has_header("x-absent")) + "\n";
            out += "minor=" + std::to_string(req.version_minor) + "\n";
            res.text(out);
        });
        srv.get("/stream", [this](const gh::Request&, gh::Response& res) {
            res.set_header("Content-Type", "text/plain");
            bool ok = res.begin_stream();
            ok = res.write("a") && ok;
            ok = res.write("") && ok; // an empty write must not end the body
            ok = res.write("bb") && ok;
            ok = res.write("ccc") && ok;
            if (!ok) ++stream_failures;
        });
        srv.get("/stream-cl", [this](const gh::Request&, gh::Response& res) {
            res.set_header("Content-Length", "6");
            bool ok = res.begin_stream();
            ok = res.write("abc") && ok;
            ok = res.write("def") && ok;
            if (!ok) ++stream_failures;
        });
        srv.get("/status/204", [](const gh::Request&, gh::Response& res) { res.status = 204; });
        srv.get("/status/204-with-body", [](const gh::Request&, gh::Response& res) {
            res.status = 204;
            res.body = "must not be sent";
        });
        srv.get("/status/204-streamed", [](const gh::Request&, gh::Response& res) {
            res.status = 204;
            res.begin_stream();
            res.write("must not be sent either");
        });
        srv.get("/status/304", [](const gh::Request&, gh::Response& res) {
            res.status = 304;
            res.set_header("ETag", "\"v1\"");
        });
#if defined(__cpp_exceptions)
        srv.get("/throw", [](const gh::Request&, gh::Response& res) {
            res.text("partial");
            throw std::runtime_error("handler failed");
        });
#endif
    }
};

// small_limits: the limits the rejection tests push against.
gh::Options small_limits() {
    gh::Options o;
    o.max_request_line_bytes = 256;
    o.max_header_bytes = 2048;
    o.max_body_bytes = 1024;
    return o;
}

// expect_serves: a normal request on a new connection gets a normal answer.
void expect_serves(Fixture& f) {
    support::Response r = support::get(f.port, "/hello");
    INFO("follow-up request: outcome " << support::outcome_name(r.outcome) << ", head "
                                       << printable(r.raw_head));
    CHECK(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(r.body == "hello");
}

// expect_closed: the server closes the connection and sends nothing more.
void expect_closed(Client& c) {
    std::string extra;
    bool closed = c.wait_closed(slack(), &extra);
    INFO("bytes after the response: " << printable(extra));
    CHECK(closed);
    CHECK(extra.empty());
}

// expect_rejected sends `raw` on a new connection and checks the exact
// error status (or `alt`, when the RFC allows two), `Connection: close`,
// that the server closes the connection, and that it still serves others.
support::Response expect_rejected(Fixture& f, const std::string& raw, int want, int alt = 0) {
    INFO("request: " << printable(raw));
    Client c;
    REQUIRE(c.connect(f.port));
    CHECK(c.send(raw));
    support::Response r = c.read_response();
    INFO("outcome " << support::outcome_name(r.outcome) << ", head " << printable(r.raw_head));
    CHECK(r.outcome == Outcome::ok);
    bool status_ok = r.status == want || (alt != 0 && r.status == alt);
    if (alt == 0) CHECK(r.status == want);
    else CHECK((r.status == want || r.status == alt));
    CHECK(starts_with(r.raw_head, "HTTP/1.1 "));
    if (status_ok) { // else the failure is reported; skip the 10 s close wait
        CHECK(r.closes()); // RFC 9112 §9.6: say so when the connection will close
        expect_closed(c);
    }
    expect_serves(f);
    return r;
}

// ---------------------------------------------------------------- processes

struct TempFile {
    std::string path;
    explicit TempFile(const std::string& content) {
        char tmpl[] = "/tmp/graceful_http_test_XXXXXX";
        int fd = ::mkstemp(tmpl);
        if (fd < 0) return;
        path = tmpl;
        std::size_t off = 0;
        while (off < content.size()) {
            ssize_t n = ::write(fd, content.data() + off, content.size() - off);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
        ::close(fd);
    }
    ~TempFile() {
        if (!path.empty()) ::unlink(path.c_str());
    }
    std::string read() const {
        std::string s;
        if (FILE* fp = std::fopen(path.c_str(), "rb")) {
            char b[4096];
            std::size_t n;
            while ((n = std::fread(b, 1, sizeof b, fp)) > 0) s.append(b, n);
            std::fclose(fp);
        }
        return s;
    }
};

// run_command runs a shell command (already bounded with `timeout`),
// returning its stdout; *exit_code is its exit status (-1 if abnormal).
std::string run_command(const std::string& cmd, int* exit_code) {
    *exit_code = -1;
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return out;
    char b[4096];
    std::size_t n;
    while ((n = std::fread(b, 1, sizeof b, p)) > 0) out.append(b, n);
    int st = ::pclose(p);
    if (st != -1 && WIFEXITED(st)) *exit_code = WEXITSTATUS(st);
    return out;
}

bool have_tool(const char* name) {
    std::string cmd = "command -v "s + name + " >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
}

std::string pattern_bytes(std::size_t n) {
    std::string s;
    s.reserve(n);
    for (std::size_t i = 0; i < n; ++i) s += static_cast<char>('a' + (i * 7 + i / 26) % 26);
    return s;
}

} // namespace

// ======================================================================
// basics
// ======================================================================

TEST_CASE("GET: status line, Content-Length and an IMF-fixdate Date", "[http]") {
    Fixture f;
    support::Response r = support::get(f.port, "/hello");
    INFO(printable(r.raw_head));
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(starts_with(r.raw_head, "HTTP/1.1 200 "));
    CHECK(r.status == 200);
    CHECK(r.header("Content-Length") == "5");
    CHECK_FALSE(r.has_header("Transfer-Encoding"));
    CHECK(r.body == "hello");
    // RFC 9110 §6.6.1: an origin server with a clock MUST send Date,
    // formatted as IMF-fixdate (§5.6.7).
    REQUIRE(r.has_header("Date"));
    std::regex imf("^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
                   "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
                   "[0-9]{2}:[0-9]{2}:[0-9]{2} GMT$");
    CHECK(std::regex_match(r.header("Date"), imf));
    CHECK(f.hello_calls.load() == 1);
}

TEST_CASE("HTTP/1.1 keep-alive: three requests on one connection", "[http]") {
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    for (int i = 1; i <= 3; ++i) {
        INFO("request " << i);
        REQUIRE(c.send("GET /users/" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body == "user=" + std::to_string(i));
        CHECK_FALSE(r.closes());
    }
    CHECK(f.srv.stats().connections_total == 1);
}

TEST_CASE("HTTP/1.0: closes by default, persists with Connection: keep-alive", "[http]") {
    Fixture f;
    SECTION("default: the server closes after the response") {
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send("GET /hello HTTP/1.0\r\n\r\n" // no Host needed in 1.0
                       "GET /smuggled HTTP/1.0\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body == "hello");
        CHECK_FALSE(contains_ci(r.header("Connection"), "keep-alive"));
        CHECK_FALSE(r.has_header("Transfer-Encoding"));
        expect_closed(c);
        CHECK(f.smuggled_calls.load() == 0);
    }
    SECTION("keep-alive: the response says keep-alive and the connection is reused") {
        Client c;
        REQUIRE(c.connect(f.port));
        for (int i = 0; i < 2; ++i) {
            INFO("request " << i);
            REQUIRE(c.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
            support::Response r = c.read_response();
            REQUIRE(r.outcome == Outcome::ok);
            CHECK(r.status == 200);
            CHECK(r.body == "hello");
            CHECK(contains_ci(r.header("Connection"), "keep-alive"));
            CHECK(r.header("Content-Length") == "5");
            CHECK_FALSE(r.has_header("Transfer-Encoding"));
        }
        // and without the option again, it closes
        REQUIRE(c.send("GET /hello HTTP/1.0\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.body == "hello");
        expect_closed(c);
        CHECK(f.srv.stats().connections_total == 1);
    }
}

TEST_CASE("Connection: close from the client: echoed, then the server closes", "[http]") {
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    // RFC 9112 §9.6: no further request on this connection is processed
    REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                   "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"));
    support::Response r = c.read_response();
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(r.body == "hello");
    CHECK(r.closes());
    expect_closed(c);
    CHECK(f.smuggled_calls.load() == 0);
}

TEST_CASE("HEAD: GET's header fields, no body", "[http]") {
    Fixture f;
    support::Response g = support::get(f.port, "/hello");
    REQUIRE(g.outcome == Outcome::ok);
    // HEAD and a GET pipelined: the GET's status line must follow the HEAD's
    // head immediately, so any body byte after HEAD would show.
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                   "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    bool closed = false;
    std::string raw = read_to_eof(c, &closed);
    INFO(printable(raw));
    CHECK(closed);
    std::size_t pos = 0;
    Head head, get;
    REQUIRE(parse_head_at(raw, pos, head));
    CHECK(head.status == 200);
    CHECK(head.get("Content-Length") == g.header("Content-Length"));
    CHECK(head.get("Content-Type") == g.header("Content-Type"));
    CHECK(head.count("Transfer-Encoding") == 0);
    REQUIRE(parse_head_at(raw, pos, get)); // fails if HEAD sent body bytes
    CHECK(get.status == 200);
    CHECK(raw.substr(pos) == "hello");
}

TEST_CASE("routing: 404, 405 with Allow, params, wildcard", "[http]") {
    Fixture f;
    SECTION("unknown path: 404") {
        support::Response r = support::get(f.port, "/nope");
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 404);
        support::Response r2 = support::get(f.port, "/users/1/extra"); // {id} is one segment
        REQUIRE(r2.outcome == Outcome::ok);
        CHECK(r2.status == 404);
    }
    SECTION("known path, other method: 405 with Allow") {
        support::Response r = support::request(f.port, "DELETE", "/things");
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 405);
        INFO("Allow: " << r.header("Allow"));
        REQUIRE(r.has_header("Allow"));
        std::set<std::string> allow = tokens(r.header("Allow"));
        CHECK(allow.count("GET") == 1);
        CHECK(allow.count("HEAD") == 1); // a GET route also answers HEAD
        CHECK(allow.count("POST") == 1);
        CHECK(allow.count("DELETE") == 0);

        support::Response p = support::request(f.port, "POST", "/hello", "x");
        REQUIRE(p.outcome == Outcome::ok);
        CHECK(p.status == 405);
        CHECK(tokens(p.header("Allow")) == std::set<std::string>{"GET", "HEAD", "OPTIONS"});
    }
    SECTION("path parameter and trailing wildcard") {
        support::Response u = support::get(f.port, "/users/42");
        REQUIRE(u.outcome == Outcome::ok);
        CHECK(u.status == 200);
        CHECK(u.body == "user=42");
        support::Response s = support::get(f.port, "/static/css/site/main.css");
        REQUIRE(s.outcome == Outcome::ok);
        CHECK(s.status == 200);
        CHECK(s.body == "static=css/site/main.css");
        support::Response s1 = support::get(f.port, "/static/x");
        REQUIRE(s1.outcome == Outcome::ok);
        CHECK(s1.body == "static=x");
        support::Response t = support::request(f.port, "POST", "/things", "");
        REQUIRE(t.outcome == Outcome::ok);
        CHECK(t.status == 200);
        CHECK(t.body == "posted");
    }
}

TEST_CASE("OPTIONS: answered by the router with Allow, unless a handler takes it", "[http]") {
    std::atomic<int> options_calls{0}, not_found_calls{0};
    Fixture f(gh::Options{}, [&](gh::Server& srv) {
        srv.handle("OPTIONS", "/cors", [&](const gh::Request&, gh::Response& res) {
            ++options_calls;
            res.set_header("Access-Control-Allow-Methods", "GET, PUT");
            res.text("preflight");
        });
        srv.put("/cors", [](const gh::Request&, gh::Response& res) { res.text("put"); });
        srv.not_found([&](const gh::Request&, gh::Response& res) {
            ++not_found_calls;
            res.text("custom 404");
        });
    });
    Client c;
    REQUIRE(c.connect(f.port));
    SECTION("OPTIONS * lists every method the server has, no handler runs") {
        REQUIRE(c.send("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 204);
        INFO("Allow: " << r.header("Allow"));
        CHECK(tokens(r.header("Allow")) ==
              std::set<std::string>{"GET", "HEAD", "POST", "PUT", "OPTIONS"});
        CHECK(r.body.empty());
        CHECK(not_found_calls.load() == 0);
        CHECK(options_calls.load() == 0);
    }
    SECTION("OPTIONS on a GET route: 204 with that path's methods") {
        REQUIRE(c.send("OPTIONS /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 204);
        CHECK(tokens(r.header("Allow")) == std::set<std::string>{"GET", "HEAD", "OPTIONS"});
        CHECK(f.hello_calls.load() == 0);
        REQUIRE(c.send("OPTIONS /things HTTP/1.1\r\nHost: t\r\n\r\n"));
        support::Response t = c.read_response();
        REQUIRE(t.outcome == Outcome::ok);
        CHECK(t.status == 204);
        CHECK(tokens(t.header("Allow")) == std::set<std::string>{"GET", "HEAD", "POST", "OPTIONS"});
    }
    SECTION("a handler registered for OPTIONS answers instead") {
        REQUIRE(c.send("OPTIONS /cors HTTP/1.1\r\nHost: t\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body == "preflight");
        CHECK(r.header("Access-Control-Allow-Methods") == "GET, PUT");
        CHECK(options_calls.load() == 1);
    }
    SECTION("OPTIONS on an unknown path: 404 from not_found") {
        REQUIRE(c.send("OPTIONS /nope HTTP/1.1\r\nHost: t\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 404);
        CHECK(not_found_calls.load() == 1);
    }
    // the connection lives on after the router's answer
    REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
    support::Response h = c.read_response();
    REQUIRE(h.outcome == Outcome::ok);
    CHECK(h.status == 200);
    CHECK(h.body == "hello");
    // asterisk-form is for OPTIONS only
    expect_rejected(f, "GET * HTTP/1.1\r\nHost: t\r\n\r\n", 400);
}

TEST_CASE("routing: a custom not_found handler", "[http]") {
    Fixture f(gh::Options{}, [](gh::Server& s) {
        s.not_found([](const gh::Request& req, gh::Response& res) {
            res.status = 404;
            res.text("custom miss: " + req.path);
        });
    });
    support::Response r = support::get(f.port, "/no/such/thing");
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.status == 404);
    CHECK(r.body == "custom miss: /no/such/thing");
    expect_serves(f); // routes still win
}

TEST_CASE("request: percent-decoded path, query parameters, header lookup", "[http]") {
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send("GET /inspect/a%20b%C3%A9?q=1%2B1%3D2&name=J%C3%BCrgen&empty= HTTP/1.1\r\n"
                   "Host: t\r\n"
                   "X-Custom-Thing:   value 1 \t\r\n"
                   "X-Empty:\r\n"
                   "\r\n"));
    support::Response r = c.read_response();
    REQUIRE(r.outcome == Outcome::ok);
    REQUIRE(r.status == 200);
    INFO(r.body);
    CHECK(contains_ci(r.body, "method=GET\n"));
    CHECK(r.body.find("target=/inspect/a%20b%C3%A9?q=1%2B1%3D2&name=J%C3%BCrgen&empty=\n") !=
          std::string::npos);
    CHECK(r.body.find("path=/inspect/a b\xC3\xA9\n") != std::string::npos);
    CHECK(r.body.find("query=q=1%2B1%3D2&name=J%C3%BCrgen&empty=\n") != std::string::npos);
    CHECK(r.body.find("\nq=1+1=2\n") != std::string::npos);
    CHECK(r.body.find("\nname=J\xC3\xBCrgen\n") != std::string::npos);
    CHECK(r.body.find("\nmissing=\n") != std::string::npos);
    CHECK(r.body.find("\nrest=a b\xC3\xA9\n") != std::string::npos);
    // field values lose surrounding whitespace (RFC 9112 §5.1), names are
    // case-insensitive (RFC 9110 §5.1)
    CHECK(r.body.find("\nh_lower=value 1\n") != std::string::npos);
    CHECK(r.body.find("\nh_upper=value 1\n") != std::string::npos);
    CHECK(r.body.find("\nhas_mixed=1\n") != std::string::npos);
    CHECK(r.body.find("\nhas_empty=1\n") != std::string::npos);
    CHECK(r.body.find("\nempty=\n") != std::string::npos);
    CHECK(r.body.find("\nhas_absent=0\n") != std::string::npos);
    CHECK(r.body.find("\nminor=1\n") != std::string::npos);
}

TEST_CASE("versions: HTTP/1.2 is served as 1.1, HTTP/1.0 reports minor 0", "[http]") {
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    // RFC 9110 §2.5: a higher minor version is processed as the highest
    // minor version the recipient implements.
    REQUIRE(c.send("GET /inspect/v HTTP/1.2\r\nHost: t\r\n\r\n"));
    support::Response r = c.read_response();
    INFO(printable(r.raw_head));
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(starts_with(r.raw_head, "HTTP/1.1 200"));
    CHECK(r.body.find("\nminor=1\n") != std::string::npos);
    CHECK_FALSE(r.closes()); // persistent, like 1.1
    REQUIRE(c.send("GET /inspect/v HTTP/1.0\r\n\r\n"));
    support::Response r0 = c.read_response();
    REQUIRE(r0.outcome == Outcome::ok);
    CHECK(r0.status == 200);
    CHECK(r0.body.find("\nminor=0\n") != std::string::npos);
}

// ======================================================================
// request bodies
// ======================================================================

TEST_CASE("request body: Content-Length, then the connection is reused", "[http]") {
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    std::string body = "hello\r\n\r\nworld\0!"s;
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body));
    support::Response r = c.read_response();
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(r.body == body);
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"));
    support::Response r2 = c.read_response();
    REQUIRE(r2.outcome == Outcome::ok);
    CHECK(r2.status == 200);
    CHECK(r2.body.empty());
    CHECK(f.echo_calls.load() == 2);
}

TEST_CASE("request body: chunked with extensions and a trailer", "[http]") {
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5;ext=1\r\nhello\r\n"
                   "6;name=\"quoted value\";flag\r\n world\r\n"
                   "A\r\n0123456789\r\n"
                   "0\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n"));
    support::Response r = c.read_response();
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(r.body == "hello world0123456789");
    // the trailer section was consumed exactly: the next request parses
    REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
    support::Response r2 = c.read_response();
    REQUIRE(r2.outcome == Outcome::ok);
    CHECK(r2.status == 200);
    CHECK(r2.body == "hello");
}

TEST_CASE("chunk extensions: each form RFC 9112 allows is accepted", "[http]") {
    Fixture f;
    const char* lines[] = {"5;a", "5;a=b", "5 ;a=b", "5\t; a = b", "5;a=\"quoted \\\" value\"",
                           "5;a=\"x\" ;b", "5;a;b;c=d", "5;a=b \t;c"};
    for (const char* line : lines) {
        INFO("chunk line: " << printable(line));
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"s +
                       line + "\r\nhello\r\n0;last=1\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body == "hello");
    }
}

TEST_CASE("an empty Host is accepted with an absolute-form target", "[http]") {
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send("GET http://t/hello HTTP/1.1\r\nHost:\r\n\r\n"));
    support::Response r = c.read_response();
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(r.body == "hello");
}

TEST_CASE("request body: exactly max_body_bytes is accepted", "[http]") {
    Fixture f(small_limits());
    std::string body = pattern_bytes(1024);
    support::Response r = support::request(f.port, "POST", "/echo", body);
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(r.body == body);
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "200\r\n" + body.substr(0, 512) + "\r\n200\r\n" + body.substr(512) +
                   "\r\n0\r\n\r\n"));
    support::Response rc = c.read_response();
    REQUIRE(rc.outcome == Outcome::ok);
    CHECK(rc.status == 200);
    CHECK(rc.body == body);
}

TEST_CASE("pipelining: requests in one write are answered in order", "[http]") {
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send("GET /users/1 HTTP/1.1\r\nHost: t\r\n\r\n"
                   "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
                   "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "2\r\nde\r\n0\r\n\r\n"
                   "GET /users/4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    const char* want[] = {"user=1", "abc", "de", "user=4"};
    for (int i = 0; i < 4; ++i) {
        INFO("response " << i);
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body == want[i]);
    }
    expect_closed(c);
    CHECK(f.srv.stats().connections_total == 1);
}

TEST_CASE("set_header replaces every field of that name, any case, and keeps the others", "[http]") {
    gh::Server srv;
    srv.get("/h", [](const gh::Request&, gh::Response& res) {
        res.set_header("X-A", "1");
        res.set_header("X-Keep", "k");
        res.headers.push_back({"x-a", "2"});
        res.set_header("x-A", "final"); // both X-A fields go
        res.set_header("X-B", "b");
        res.text("ok");
    });
    REQUIRE_FALSE(static_cast<bool>(srv.listen("127.0.0.1", 0)));
    support::Running running(srv);
    Client c;
    REQUIRE(c.connect(srv.port()));
    for (int i = 0; i < 3; ++i) { // the second and third reuse the connection's spare fields
        INFO("request " << i);
        REQUIRE(c.send("GET /h HTTP/1.1\r\nHost: t\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        int xa = 0;
        for (auto& h : r.headers)
            if (strcasecmp(h.first.c_str(), "X-A") == 0) ++xa;
        CHECK(xa == 1);
        CHECK(r.header("X-A") == "final");
        CHECK(r.header("X-Keep") == "k");
        CHECK(r.header("X-B") == "b");
        CHECK(r.body == "ok");
    }
}

TEST_CASE("request body read straight from the socket: pieces, then a pipelined request behind it", "[http]") {
    // A Content-Length body the handler reads goes from the socket into
    // the body's own buffer, at most the bytes left: the request behind it
    // must stay in the socket for the next read. The head goes first and
    // the body only once the handler waits for it, so that path is used.
    gh::Server srv;
    support::Gate entered;
    srv.post("/echo", [&](const gh::Request& req, gh::Response& res) {
        entered.arrive();
        const std::string& body = req.body();
        if (req.body_ok()) res.text(body, "application/octet-stream");
    });
    srv.get("/next", [](const gh::Request&, gh::Response& res) { res.text("next"); });
    REQUIRE_FALSE(static_cast<bool>(srv.listen("127.0.0.1", 0)));
    support::Running running(srv);
    Client c;
    REQUIRE(c.connect(srv.port()));
    int arrivals = 0;
    // 200 KiB is reserved up front; 1.5 MiB (past the 1 MiB up-front limit) grows as it comes.
    for (std::size_t size : {std::size_t{200} * 1024, std::size_t{1536} * 1024}) {
        INFO("body of " << size << " bytes");
        std::string body = pattern_bytes(size);
        REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(size) +
                       "\r\n\r\n"));
        REQUIRE(entered.wait_arrived(++arrivals));
        REQUIRE(c.send(body.substr(0, 1000)));
        REQUIRE(c.send(body.substr(1000, size / 2)));
        REQUIRE(c.send(body.substr(1000 + size / 2) + "GET /next HTTP/1.1\r\nHost: t\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body.size() == size);
        CHECK(r.body == body);
        support::Response next = c.read_response();
        REQUIRE(next.outcome == Outcome::ok);
        CHECK(next.status == 200);
        CHECK(next.body == "next");
    }
    CHECK(srv.stats().connections_total == 1);
}

TEST_CASE("body not read by the handler: framing stays intact", "[http]") {
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    // the body is itself a request: it must never be parsed as one
    std::string body = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    REQUIRE(c.send("POST /noread HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body +
                   "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
    support::Response r = c.read_response();
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(r.body == "ignored");
    if (r.closes()) {
        expect_closed(c); // closing instead of discarding is allowed
    } else {
        support::Response r2 = c.read_response(); // discarded, then the next one
        REQUIRE(r2.outcome == Outcome::ok);
        CHECK(r2.status == 200);
        CHECK(r2.body == "hello");
    }
    CHECK(f.smuggled_calls.load() == 0);
}

TEST_CASE("Expect: 100-continue", "[http]") {
    Fixture f;
    SECTION("100 Continue is sent only when the handler reads the body") {
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send("POST /gated HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                       "Expect: 100-continue\r\n\r\n"));
        REQUIRE(f.gate.wait_arrived(1));
        // the handler runs but has not called body(): no interim response yet
        CHECK(nothing_arrives(c, ms(100)));
        f.gate.open();
        support::Response interim = c.read_response();
        INFO(printable(interim.raw_head));
        REQUIRE(interim.outcome == Outcome::ok);
        CHECK(interim.status == 100);
        CHECK(starts_with(interim.raw_head, "HTTP/1.1 100"));
        REQUIRE(c.send("hello"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body == "got:hello");
        // the connection stays usable
        REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
        support::Response r2 = c.read_response();
        REQUIRE(r2.outcome == Outcome::ok);
        CHECK(r2.body == "hello");
    }
    SECTION("a handler that ignores the body: final response, no 100, then close") {
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send("POST /noread HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                       "Expect: 100-continue\r\n\r\n"));
        support::Response r = c.read_response();
        INFO(printable(r.raw_head));
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body == "ignored");
        CHECK(r.closes());
        expect_closed(c);
        CHECK(f.noread_calls.load() == 1);
        expect_serves(f);
    }
    SECTION("HTTP/1.0: the expectation is ignored, no 1xx is ever sent") {
        // RFC 9110 §10.1.1: a server MUST ignore 100-continue in an HTTP/1.0
        // request; §15.2: it MUST NOT send a 1xx response to a 1.0 client.
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send("POST /echo HTTP/1.0\r\nContent-Length: 5\r\n"
                       "Expect: 100-continue\r\n\r\nhello"));
        support::Response r = c.read_response();
        INFO(printable(r.raw_head));
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body == "hello");
    }
    SECTION("another expectation: 417 and no handler call") {
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                       "Expect: the-unexpected\r\n\r\nhello"));
        support::Response r = c.read_response();
        INFO(printable(r.raw_head));
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 417);
        CHECK(f.echo_calls.load() == 0);
        if (r.closes()) {
            expect_closed(c);
        } else { // kept open: the body must have been discarded
            REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
            support::Response r2 = c.read_response();
            REQUIRE(r2.outcome == Outcome::ok);
            CHECK(r2.status == 200);
            CHECK(r2.body == "hello");
        }
        expect_serves(f);
    }
}

// ======================================================================
// responses
// ======================================================================

TEST_CASE("streaming: chunked with a correct terminator, connection reused", "[http]") {
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"
                   "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    bool closed = false;
    std::string raw = read_to_eof(c, &closed);
    INFO(printable(raw, 600));
    CHECK(closed);
    std::size_t pos = 0;
    Head h;
    REQUIRE(parse_head_at(raw, pos, h));
    CHECK(h.status == 200);
    CHECK(lower(h.get("Transfer-Encoding")) == "chunked");
    CHECK(h.count("Content-Length") == 0); // RFC 9112 §6.2: not with Transfer-Encoding
    CHECK(h.get("Content-Type") == "text/plain");
    std::string body;
    int chunks = 0;
    REQUIRE(decode_chunked_at(raw, pos, body, &chunks));
    CHECK(body == "abbccc"); // the empty write() did not end the body early
    CHECK(chunks >= 1);
    Head next;
    REQUIRE(parse_head_at(raw, pos, next));
    CHECK(next.status == 200);
    CHECK(raw.substr(pos) == "hello");
    CHECK(f.stream_failures.load() == 0);
}

TEST_CASE("streaming with Content-Length: a raw body of that length", "[http]") {
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send("GET /stream-cl HTTP/1.1\r\nHost: t\r\n\r\n"
                   "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    bool closed = false;
    std::string raw = read_to_eof(c, &closed);
    INFO(printable(raw, 600));
    CHECK(closed);
    std::size_t pos = 0;
    Head h;
    REQUIRE(parse_head_at(raw, pos, h));
    CHECK(h.status == 200);
    CHECK(h.count("Content-Length") == 1);
    CHECK(h.get("Content-Length") == "6");
    CHECK(h.count("Transfer-Encoding") == 0);
    REQUIRE(raw.size() >= pos + 6);
    CHECK(raw.substr(pos, 6) == "abcdef");
    pos += 6;
    Head next;
    REQUIRE(parse_head_at(raw, pos, next));
    CHECK(next.status == 200);
    CHECK(raw.substr(pos) == "hello");
    CHECK(f.stream_failures.load() == 0);
}

TEST_CASE("streaming to HTTP/1.0: close-delimited", "[http]") {
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send("GET /stream HTTP/1.0\r\n\r\n"));
    bool closed = false;
    std::string raw = read_to_eof(c, &closed);
    INFO(printable(raw));
    CHECK(closed);
    std::size_t pos = 0;
    Head h;
    REQUIRE(parse_head_at(raw, pos, h));
    CHECK(h.status == 200);
    // RFC 9112 §6.1: no Transfer-Encoding to a 1.0 client
    CHECK(h.count("Transfer-Encoding") == 0);
    CHECK(h.count("Content-Length") == 0);
    CHECK(raw.substr(pos) == "abbccc");
}

TEST_CASE("204 and 304 responses carry no body", "[http]") {
    Fixture f;
    const char* paths[] = {"/status/204", "/status/204-with-body", "/status/304",
                           "/status/204-streamed"};
    for (const char* path : paths) {
        INFO("path " << path);
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send("GET "s + path + " HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
        bool closed = false;
        std::string raw = read_to_eof(c, &closed);
        INFO(printable(raw));
        CHECK(closed);
        std::size_t pos = 0;
        Head h;
        REQUIRE(parse_head_at(raw, pos, h));
        CHECK(h.status == (path[8] == '2' ? 204 : 304));
        CHECK(h.count("Transfer-Encoding") == 0);
        if (h.status == 204) CHECK(h.count("Content-Length") == 0); // RFC 9110 §8.6 MUST NOT
        Head next;
        bool next_ok = parse_head_at(raw, pos, next); // no body bytes in between
        CHECK(next_ok);
        if (!next_ok) continue;
        CHECK(next.status == 200);
        CHECK(raw.substr(pos) == "hello");
    }
}

#if defined(__cpp_exceptions)
TEST_CASE("a handler exception becomes 500 and the server lives on", "[http]") {
    Fixture f;
    support::Response r = support::get(f.port, "/throw");
    INFO(printable(r.raw_head));
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.status == 500);
    CHECK(r.body.find("partial") == std::string::npos);
    expect_serves(f);
    support::Response r2 = support::get(f.port, "/throw");
    REQUIRE(r2.outcome == Outcome::ok);
    CHECK(r2.status == 500);
    expect_serves(f);
}
#endif

// ======================================================================
// rejections
// ======================================================================

TEST_CASE("rejection: Content-Length with Transfer-Encoding -> 400, no smuggling", "[http]") {
    Fixture f;
    // If the server framed by Content-Length (4 bytes: "0\r\n\r") or read
    // the chunked body and went on, GET /smuggled would reach its handler.
    expect_rejected(f,
                    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"
                    "0\r\n\r\n"
                    "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
                    400);
    CHECK(f.smuggled_calls.load() == 0);
    CHECK(f.echo_calls.load() == 0);
    // the other order of the fields too
    expect_rejected(f,
                    "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                    "Content-Length: 40\r\n\r\n"
                    "0\r\n\r\n"
                    "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
                    400);
    CHECK(f.smuggled_calls.load() == 0);
    CHECK(f.echo_calls.load() == 0);
}

namespace {
struct Rejection {
    const char* name;
    std::string raw;
    int status;
    int alt; // another status the RFC allows, or 0
};
const std::string kPost = "POST /echo HTTP/1.1\r\nHost: t\r\n";

std::vector<Rejection> framing_rejections() {
    return {
        {"two different Content-Length fields",
         kPost + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, 0},
        {"Content-Length list with different values",
         kPost + "Content-Length: 5, 6\r\n\r\nhello!", 400, 0},
        {"non-numeric Content-Length", kPost + "Content-Length: abc\r\n\r\nhello", 400, 0},
        {"negative Content-Length", kPost + "Content-Length: -1\r\n\r\nhello", 400, 0},
        {"Content-Length with a sign", kPost + "Content-Length: +5\r\n\r\nhello", 400, 0},
        {"Content-Length in hex", kPost + "Content-Length: 0x5\r\n\r\nhello", 400, 0},
        {"overflowing Content-Length",
         kPost + "Content-Length: 99999999999999999999999\r\n\r\nhello", 400, 0},
        {"Transfer-Encoding not ending in chunked",
         kPost + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400, 0},
        {"Transfer-Encoding without chunked",
         kPost + "Transfer-Encoding: gzip\r\n\r\nhello", 400, 0},
        {"chunked applied twice",
         kPost + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400, 0},
        {"unknown transfer coding before chunked",
         kPost + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, 0},
        {"bad chunk size",
         kPost + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, 0},
        {"empty chunk size line",
         kPost + "Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", 400, 0},
        {"missing CRLF after chunk data",
         kPost + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400, 0},
        {"overflowing chunk size",
         kPost + "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n",
         400, 413},
        // RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )
        {"chunk line with a bare semicolon",
         kPost + "Transfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n", 400, 0},
        {"chunk extension name with a space in it",
         kPost + "Transfer-Encoding: chunked\r\n\r\n5;a b\r\nhello\r\n0\r\n\r\n", 400, 0},
        {"chunk extension without a name",
         kPost + "Transfer-Encoding: chunked\r\n\r\n5;=x\r\nhello\r\n0\r\n\r\n", 400, 0},
        {"chunk extension name that is not a token",
         kPost + "Transfer-Encoding: chunked\r\n\r\n5;a@b=1\r\nhello\r\n0\r\n\r\n", 400, 0},
        {"chunk extension value left empty",
         kPost + "Transfer-Encoding: chunked\r\n\r\n5;a=\r\nhello\r\n0\r\n\r\n", 400, 0},
        {"chunk extension quoted value never closed",
         kPost + "Transfer-Encoding: chunked\r\n\r\n5;a=\"x\r\nhello\r\n0\r\n\r\n", 400, 0},
        {"chunk size followed by a space",
         kPost + "Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 400, 0},
        {"chunk size followed by a tab",
         kPost + "Transfer-Encoding: chunked\r\n\r\n5\t\r\nhello\r\n0\r\n\r\n", 400, 0},
        {"last chunk followed by a space",
         kPost + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0 \r\n\r\n", 400, 0},
    };
}

std::vector<Rejection> syntax_rejections() {
    return {
        {"header line without a colon", "GET /hello HTTP/1.1\r\nHost: t\r\nNoColonHere\r\n\r\n",
         400, 0},
        {"empty field name", "GET /hello HTTP/1.1\r\nHost: t\r\n: value\r\n\r\n", 400, 0},
        {"whitespace before the colon",
         "GET /hello HTTP/1.1\r\nHost: t\r\nX-Foo : bar\r\n\r\n", 400, 0},
        {"whitespace before the colon (Content-Length)",
         kPost + "Content-Length : 5\r\n\r\nhello", 400, 0},
        {"obs-fold", "GET /hello HTTP/1.1\r\nHost: t\r\nX-Foo: bar\r\n baz\r\n\r\n", 400, 0},
        {"obs-fold with a tab", "GET /hello HTTP/1.1\r\nHost: t\r\nX-Foo: bar\r\n\tbaz\r\n\r\n",
         400, 0},
        {"NUL in a field value", "GET /hello HTTP/1.1\r\nHost: t\r\nX-Foo: a\0z\r\n\r\n"s, 400,
         0},
        {"bare CR in a field value", "GET /hello HTTP/1.1\r\nHost: t\r\nX-Foo: a\rz\r\n\r\n",
         400, 0},
        {"control byte in the target", "GET /hel\x01z HTTP/1.1\r\nHost: t\r\n\r\n", 400, 0},
        {"DEL in the target", "GET /hel\x7fz HTTP/1.1\r\nHost: t\r\n\r\n", 400, 0},
        {"HTTP/1.1 without Host", "GET /hello HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, 0},
        {"two different Host fields", "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
         0},
        {"two identical Host fields", "GET /hello HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400,
         0},
        {"Host with an invalid value", "GET /hello HTTP/1.1\r\nHost: bad host\r\n\r\n", 400,
         0},
        {"whitespace-preceded first field line",
         "GET /hello HTTP/1.1\r\n Host: t\r\nHost: t\r\n\r\n", 400, 0},
        {"target neither origin- nor absolute-form", "GET hello HTTP/1.1\r\nHost: t\r\n\r\n",
         400, 0},
        {"HTTP/2.0 request line", "GET /hello HTTP/2.0\r\nHost: t\r\n\r\n", 505, 0},
        {"garbage version", "GET /hello HTTX/1.1\r\nHost: t\r\n\r\n", 400, 0},
        {"lower-case HTTP-name", "GET /hello http/1.1\r\nHost: t\r\n\r\n", 400, 0},
        // RFC 9112 §3.2: no fragment in a request-target
        {"fragment in the target", "GET /hello#frag HTTP/1.1\r\nHost: t\r\n\r\n", 400, 0},
        {"fragment after a query", "GET /hello?a=1#frag HTTP/1.1\r\nHost: t\r\n\r\n", 400, 0},
        // RFC 3986 §2: raw bytes outside ASCII must be percent-encoded
        {"raw UTF-8 in the target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n", 400, 0},
        {"overlong UTF-8 in the target", "GET /\xc0\xaf HTTP/1.1\r\nHost: t\r\n\r\n", 400, 0},
        {"byte 0xff in the query", "GET /hello?q=\xff HTTP/1.1\r\nHost: t\r\n\r\n", 400, 0},
        // RFC 9112 §3.2: an origin-form target has an authority, so Host may not be empty
        {"empty Host on an origin-form request", "GET /hello HTTP/1.1\r\nHost:\r\n\r\n", 400,
         0},
        {"Host of only whitespace", "GET /hello HTTP/1.1\r\nHost:   \r\n\r\n", 400, 0},
        {"empty Host on an HTTP/1.0 origin-form request",
         "GET /hello HTTP/1.0\r\nHost:\r\n\r\n", 400, 0},
        // RFC 9112 §3: a method longer than any implemented SHOULD get 501,
        // bounded on its own before the request-line limit (414)
        {"100 KB method token", std::string(100 * 1000, 'G') + " /hello HTTP/1.1\r\nHost: t\r\n\r\n",
         501, 0},
        {"100 KB method token, still arriving", std::string(100 * 1000, 'G'), 501, 0},
        {"33-byte method", std::string(33, 'M') + " /hello HTTP/1.1\r\nHost: t\r\n\r\n", 501, 0},
    };
}

std::vector<Rejection> limit_rejections() {
    // small_limits(): request line 256, header section 2048, body 1024
    std::string long_target = "/" + std::string(400, 'a');
    std::string many_fields;
    for (int i = 0; i < 40; ++i)
        many_fields += "X-Pad-" + std::to_string(i) + ": " + std::string(80, 'p') + "\r\n";
    return {
        {"request line over max_request_line_bytes",
         "GET " + long_target + " HTTP/1.1\r\nHost: t\r\n\r\n", 414, 0},
        {"request line over max_request_line_bytes, CRLF not yet sent", "GET " + long_target,
         414, 0},
        {"header section over max_header_bytes",
         "GET /hello HTTP/1.1\r\nHost: t\r\n" + many_fields + "\r\n", 431, 0},
        {"header section over max_header_bytes, not yet terminated",
         "GET /hello HTTP/1.1\r\nHost: t\r\n" + many_fields, 431, 0},
        {"Content-Length over max_body_bytes, body never sent",
         kPost + "Content-Length: 100000\r\n\r\n", 413, 0},
        {"Content-Length over max_body_bytes with 100-continue, body never sent",
         kPost + "Content-Length: 1025\r\nExpect: 100-continue\r\n\r\n", 413, 0},
        {"chunked body over max_body_bytes",
         kPost + "Transfer-Encoding: chunked\r\n\r\n400\r\n" + std::string(1024, 'x') +
             "\r\n1\r\nx\r\n0\r\n\r\n",
         413, 0},
    };
}
} // namespace

TEST_CASE("rejection: message framing", "[http]") {
    for (const Rejection& c : framing_rejections()) {
        DYNAMIC_SECTION(c.name) {
            Fixture f(small_limits());
            expect_rejected(f, c.raw, c.status, c.alt);
            CHECK(f.smuggled_calls.load() == 0);
        }
    }
}

TEST_CASE("rejection: request line and field syntax", "[http]") {
    for (const Rejection& c : syntax_rejections()) {
        DYNAMIC_SECTION(c.name) {
            Fixture f(small_limits());
            expect_rejected(f, c.raw, c.status, c.alt);
            CHECK(f.hello_calls.load() == 1); // only expect_serves' request
        }
    }
}

TEST_CASE("rejection: size limits", "[http]") {
    for (const Rejection& c : limit_rejections()) {
        DYNAMIC_SECTION(c.name) {
            Fixture f(small_limits());
            expect_rejected(f, c.raw, c.status, c.alt); // a 100 first would fail it
            CHECK(f.hello_calls.load() == 1);
        }
    }
}

TEST_CASE("rejection: a stalled header section gets 408 after read_header_timeout", "[http]") {
    gh::Options o;
    o.read_header_timeout = ms(300);
    o.idle_timeout = ms(30000);
    Fixture f(o);
    SECTION("half a header, then silence: 408 and close") {
        auto t0 = Clock::now();
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send("GET /hello HTTP/1.1\r\nHo"));
        support::Response r = c.read_response();
        long waited = support::elapsed_ms(t0);
        INFO("408 after " << waited << " ms; head " << printable(r.raw_head));
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 408);
        CHECK(waited >= 250); // the server's own timer, not an early give-up
        CHECK(r.closes());
        expect_closed(c);
        CHECK(f.hello_calls.load() == 0);
        expect_serves(f);
    }
    SECTION("the second request on a keep-alive connection stalls: 408") {
        Client c;
        REQUIRE(c.connect(f.port));
        REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
        support::Response r1 = c.read_response();
        REQUIRE(r1.outcome == Outcome::ok);
        CHECK(r1.status == 200);
        REQUIRE(c.send("GET /hello HT"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 408);
        expect_closed(c);
        expect_serves(f);
    }
    SECTION("a connection that never sends a byte is closed quietly") {
        auto t0 = Clock::now();
        Client c;
        REQUIRE(c.connect(f.port));
        expect_closed(c); // no 408 for a silent connection
        CHECK(support::elapsed_ms(t0) >= 250);
        expect_serves(f);
    }
}

TEST_CASE("read_header_timeout restarts for a pipelined request", "[http]") {
    // The next request's head is partly in the server's buffer while a slow
    // handler runs for longer than read_header_timeout. Its timer must start
    // when the server begins reading it, not when an earlier request began.
    gh::Options o;
    o.read_header_timeout = ms(1000);
    Fixture f(o);
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send("POST /gated HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok"
                   "GET /hello HTTP/1.1\r\nHo"));
    REQUIRE(f.gate.wait_arrived(1));
    // the handler is deliberately slow: this is the condition under test
    std::this_thread::sleep_for(ms(1300));
    f.gate.open();
    support::Response r1 = c.read_response();
    REQUIRE(r1.outcome == Outcome::ok);
    CHECK(r1.status == 200);
    CHECK(r1.body == "got:ok");
    // The rest comes a little later, as from a real client: by then the
    // server is waiting for it (sent at once, it can win the race against
    // the server's own bookkeeping). 100 ms is well inside a fresh 1 s.
    std::this_thread::sleep_for(ms(100));
    REQUIRE(c.send("st: t\r\n\r\n"));
    support::Response r2 = c.read_response();
    INFO(printable(r2.raw_head));
    REQUIRE(r2.outcome == Outcome::ok);
    CHECK(r2.status == 200);
    CHECK(r2.body == "hello");
}

TEST_CASE("empty lines before a request line are ignored", "[http]") {
    // RFC 9112 §2.2: SHOULD ignore at least one empty line before it.
    Fixture f;
    Client c;
    REQUIRE(c.connect(f.port));
    REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                   "\r\nGET /users/9 HTTP/1.1\r\nHost: t\r\n\r\n"));
    support::Response r1 = c.read_response();
    REQUIRE(r1.outcome == Outcome::ok);
    CHECK(r1.body == "hello");
    support::Response r2 = c.read_response();
    REQUIRE(r2.outcome == Outcome::ok);
    CHECK(r2.status == 200);
    CHECK(r2.body == "user=9");
}

TEST_CASE("idle keep-alive connection closed after idle_timeout", "[http]") {
    gh::Options o;
    o.idle_timeout = ms(300);
    o.read_header_timeout = ms(30000);
    Fixture f(o);
    Client c;
    REQUIRE(c.connect(f.port));
    auto t0 = Clock::now(); // no later than the server's idle timer starts
    REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
    support::Response r = c.read_response();
    REQUIRE(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK_FALSE(r.closes());
    expect_closed(c); // quietly: no 408 on an idle connection
    long waited = support::elapsed_ms(t0);
    INFO("closed after " << waited << " ms");
    CHECK(waited >= 250);
    expect_serves(f);
}

// ======================================================================
// interop with real clients
// ======================================================================

TEST_CASE("interop: curl", "[http]") {
    if (!have_tool("curl") || !have_tool("timeout")) {
        WARN("curl (or timeout) not found: skipping the curl interop test");
        return;
    }
    Fixture f;
    std::string base = "http://127.0.0.1:" + std::to_string(f.port);
    int rc = -1;

    SECTION("keep-alive: two URLs, one connection") {
        std::string out = run_command("timeout 20 curl -sS -v " + base + "/hello " + base +
                                          "/users/7 2>&1",
                                      &rc);
        INFO(out);
        CHECK(rc == 0);
        CHECK(out.find("Re-using existing connection") != std::string::npos);
        CHECK(out.find("hello") != std::string::npos);
        CHECK(out.find("user=7") != std::string::npos);
        CHECK(f.srv.stats().connections_total == 1);
    }
    SECTION("chunked upload") {
        std::string content = pattern_bytes(5000);
        TempFile in(content), out("");
        REQUIRE_FALSE(in.path.empty());
        REQUIRE_FALSE(out.path.empty());
        std::string log = run_command("timeout 20 curl -sS -v -o " + out.path +
                                          " -H 'Transfer-Encoding: chunked' --data-binary @" +
                                          in.path + " " + base + "/echo 2>&1",
                                      &rc);
        INFO(log);
        CHECK(rc == 0);
        CHECK(contains_ci(log, "> Transfer-Encoding: chunked"));
        CHECK(log.find("< HTTP/1.1 200") != std::string::npos);
        CHECK(out.read() == content);
    }
    SECTION("Expect: 100-continue") {
        std::string content = pattern_bytes(3000);
        TempFile in(content), out("");
        REQUIRE_FALSE(in.path.empty());
        std::string log = run_command("timeout 20 curl -sS -v -o " + out.path +
                                          " -H 'Expect: 100-continue' --expect100-timeout 15"
                                          " --data-binary @" + in.path + " " + base +
                                          "/echo 2>&1",
                                      &rc);
        INFO(log);
        CHECK(rc == 0);
        CHECK(log.find("< HTTP/1.1 100 Continue") != std::string::npos);
        CHECK(log.find("< HTTP/1.1 200") != std::string::npos);
        CHECK(out.read() == content);
    }
    SECTION("HEAD") {
        std::string out = run_command("timeout 20 curl -sS -I " + base + "/hello 2>&1", &rc);
        INFO(out);
        CHECK(rc == 0);
        CHECK(starts_with(out, "HTTP/1.1 200"));
        CHECK(contains_ci(out, "\r\nContent-Length: 5\r\n"));
    }
}

TEST_CASE("interop: python3 http.client", "[http]") {
    if (!have_tool("python3") || !have_tool("timeout")) {
        WARN("python3 (or timeout) not found: skipping the http.client interop test");
        return;
    }
    Fixture f;
    TempFile script(R"PY(
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=15)
c.request("GET", "/hello")
r = c.getresponse()
print("get1", r.status, r.read().decode())
s1 = c.sock
c.request("GET", "/users/42")
r = c.getresponse()
print("get2", r.status, r.read().decode())
print("reused", s1 is not None and c.sock is s1)
c.request("HEAD", "/hello")
r = c.getresponse()
b = r.read()
print("head", r.status, r.getheader("Content-Length"), len(b))
def gen():
    yield b"hello "
    yield b"chunked "
    yield b"world"
c.request("POST", "/echo", body=gen(), encode_chunked=True)
r = c.getresponse()
print("chunked", r.status, r.read().decode())
print("still_reused", c.sock is s1)
c.close()
print("done")
)PY");
    REQUIRE_FALSE(script.path.empty());
    int rc = -1;
    std::string out = run_command(
        "timeout 20 python3 " + script.path + " " + std::to_string(f.port) + " 2>&1", &rc);
    INFO(out);
    CHECK(rc == 0);
    CHECK(out.find("get1 200 hello\n") != std::string::npos);
    CHECK(out.find("get2 200 user=42\n") != std::string::npos);
    CHECK(out.find("reused True\n") != std::string::npos);
    CHECK(out.find("head 200 5 0\n") != std::string::npos);
    CHECK(out.find("chunked 200 hello chunked world\n") != std::string::npos);
    CHECK(out.find("still_reused True\n") != std::string::npos);
    CHECK(out.find("done\n") != std::string::npos);
    CHECK(f.srv.stats().connections_total == 1);
}
