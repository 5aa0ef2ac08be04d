// Middleware (Server::use), the error-page hook (Server::on_error) and the
// access log (Server::on_request_done, format_common_log/_combined_log),
// over real sockets on loopback; demo_server --access-log driven by curl.
#include <catch2/catch.hpp>

#include "support.hpp"

#include <regex>
#include <stdexcept>

namespace gh = graceful_http;
using support::Client;
using support::Outcome;
using support::ms;

namespace {

// Raw request on a keep-alive connection (no Connection: close).
std::string req_text(const std::string& method, const std::string& target,
                     const std::string& extra = "", const std::string& body = "") {
    std::string r = method + " " + target + " HTTP/1.1\r\nHost: t\r\n" + extra;
    if (!body.empty()) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    return r + "\r\n" + body;
}

support::Response roundtrip(Client& c, const std::string& request, bool head_only = false) {
    if (!c.send(request)) return {};
    return c.read_response(support::slack(), head_only);
}

// A thread-safe list of strings, for the order in which code ran.
class Trace {
public:
    void add(const std::string& s) {
        std::lock_guard<std::mutex> lk(mu_);
        items_.push_back(s);
    }
    std::string joined() {
        std::lock_guard<std::mutex> lk(mu_);
        std::string out;
        for (const std::string& s : items_) out += (out.empty() ? "" : " ") + s;
        items_.clear();
        return out;
    }

private:
    std::mutex mu_;
    std::vector<std::string> items_;
};

// A copy of one RequestLog (its views die with the call).
struct Entry {
    std::string method, target, user_agent, referer, peer, common, combined;
    int version_minor = -1, status = -1;
    std::uint64_t bytes = 0;
    std::chrono::microseconds duration{0};
    std::chrono::system_clock::time_point time;
};

// Collects the access log; waits (bounded) for entries to arrive.
class LogSink {
public:
    void add(const gh::RequestLog& r) {
        Entry e{std::string(r.method), std::string(r.target), std::string(r.user_agent),
                std::string(r.referer), std::string(r.peer), gh::format_common_log(r),
                gh::format_combined_log(r), r.version_minor, r.status, r.bytes, r.duration, r.time};
        std::lock_guard<std::mutex> lk(mu_);
        entries_.push_back(std::move(e));
        cv_.notify_all();
    }
    bool wait_for(std::size_t n) {
        std::unique_lock<std::mutex> lk(mu_);
        return cv_.wait_for(lk, support::slack(), [&] { return entries_.size() >= n; });
    }
    Entry at(std::size_t i) {
        std::lock_guard<std::mutex> lk(mu_);
        return entries_.at(i);
    }
    std::size_t size() {
        std::lock_guard<std::mutex> lk(mu_);
        return entries_.size();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Entry> entries_;
};

std::string run_command(const std::string& cmd) {
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
        char b[4096];
        std::size_t n;
        while ((n = std::fread(b, 1, sizeof b, p)) > 0) out.append(b, n);
        ::pclose(p);
    }
    return out;
}

bool have_tool(const std::string& name) {
    return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t pos = 0, nl;
    while ((nl = text.find('\n', pos)) != std::string::npos) {
        out.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return out;
}

} // namespace

TEST_CASE("middleware: wraps the handler in registration order; one that skips next() answers",
          "[middleware]") {
    gh::Server srv;
    Trace trace;
    auto tracer = [&](const std::string& name) {
        return [&trace, name](const gh::Request&, gh::Response& res, const gh::Next& next) {
            trace.add(name + ">");
            next();
            trace.add("<" + name);
            res.set_header("X-Seen-By-" + name, std::to_string(res.status)); // after the handler
        };
    };
    srv.use(tracer("a"));
    srv.use([&](const gh::Request& req, gh::Response& res, const gh::Next& next) {
        if (req.header("X-Key") != "secret") { // auth: answer without the handler
            trace.add("denied");
            res.status = 401;
            res.text("no key\n");
            return;
        }
        next();
    });
    srv.use(tracer("b"));
    srv.get("/items/{id}", [&](const gh::Request& req, gh::Response& res) {
        trace.add("handler:" + std::string(req.param("id")));
        res.status = 201;
        res.text("item\n");
    });
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    support::Running run(srv);
    Client c;
    REQUIRE(c.connect(srv.port()));

    support::Response ok = roundtrip(c, req_text("GET", "/items/7", "X-Key: secret\r\n"));
    REQUIRE(ok.outcome == Outcome::ok);
    CHECK(ok.status == 201);
    CHECK(ok.body == "item\n");
    CHECK(ok.header("X-Seen-By-a") == "201");
    CHECK(ok.header("X-Seen-By-b") == "201");
    CHECK(trace.joined() == "a> b> handler:7 <b <a");

    support::Response denied = roundtrip(c, req_text("GET", "/items/8"));
    REQUIRE(denied.outcome == Outcome::ok);
    CHECK(denied.status == 401);
    CHECK(denied.body == "no key\n");
    CHECK(denied.header("X-Seen-By-a") == "401");
    CHECK_FALSE(denied.has_header("X-Seen-By-b"));
    CHECK_FALSE(denied.closes()); // an answer like any other: the connection lives on
    CHECK(trace.joined() == "a> denied <a");
}

TEST_CASE("middleware: a body it reads is read under Options::max_body_bytes; the route's own "
          "limit applies from routing on",
          "[middleware]") {
    gh::Server srv;
    srv.use([](const gh::Request& req, gh::Response&, const gh::Next& next) {
        if (req.has_header("X-Peek")) (void)req.body(); // e.g. a signature check
        next();
    });
    gh::RouteOptions small;
    small.max_body_bytes = 8;
    srv.post("/small", [](const gh::Request& req, gh::Response& res) { res.text(req.body()); },
             small);
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    support::Running run(srv);
    const std::string body(100, 'x'), chunked = "Transfer-Encoding: chunked\r\n";
    {
        Client c; // the middleware read it whole: the handler sees the same body
        REQUIRE(c.connect(srv.port()));
        support::Response r = roundtrip(c, req_text("POST", "/small", "X-Peek: 1\r\n", body));
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body == body);
        support::Response again = roundtrip(c, req_text("GET", "/small")); // still open: 405
        CHECK(again.status == 405);
    }
    {
        Client c; // chunked, read by the middleware: the decoder is not replaced under it
        REQUIRE(c.connect(srv.port()));
        support::Response r = roundtrip(
            c, req_text("POST", "/small", "X-Peek: 1\r\n" + chunked) + "64\r\n" + body + "\r\n0\r\n\r\n");
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 200);
        CHECK(r.body == body);
    }
    {
        Client c; // read by the middleware, over Options::max_body_bytes (8 MiB): 413
        REQUIRE(c.connect(srv.port()));
        REQUIRE(c.send("POST /small HTTP/1.1\r\nHost: t\r\nX-Peek: 1\r\n"
                       "Content-Length: 999999999\r\n\r\n"));
        support::Response r = c.read_response();
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 413);
        CHECK(r.header("Connection") == "close");
    }
    for (const std::string& framing : {std::string(), chunked}) {
        Client c; // not read before routing: the route's 8 bytes apply
        REQUIRE(c.connect(srv.port()));
        std::string req = framing.empty() ? req_text("POST", "/small", "", body)
                                          : req_text("POST", "/small", framing) + "64\r\n" + body + "\r\n0\r\n\r\n";
        support::Response r = roundtrip(c, req);
        REQUIRE(r.outcome == Outcome::ok);
        CHECK(r.status == 413);
    }
}

TEST_CASE("middleware: wraps the router's own 404, 405 and OPTIONS; a CORS middleware answers a "
          "preflight itself",
          "[middleware]") {
    gh::Server srv;
    srv.use([](const gh::Request& req, gh::Response& res, const gh::Next& next) {
        res.set_header("Access-Control-Allow-Origin", "*");
        if (req.method == "OPTIONS" && req.has_header("Access-Control-Request-Method")) {
            res.status = 204;
            res.set_header("Access-Control-Allow-Methods", "GET, POST");
            return;
        }
        next();
    });
    srv.get("/items", [](const gh::Request&, gh::Response& res) { res.text("items\n"); });
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    support::Running run(srv);
    Client c;
    REQUIRE(c.connect(srv.port()));

    support::Response r = roundtrip(c, req_text("GET", "/items"));
    CHECK(r.status == 200);
    CHECK(r.header("Access-Control-Allow-Origin") == "*");
    r = roundtrip(c, req_text("GET", "/nope"));
    CHECK(r.status == 404);
    CHECK(r.body == "404 Not Found\n");
    CHECK(r.header("Access-Control-Allow-Origin") == "*");
    r = roundtrip(c, req_text("POST", "/items", "", "x"));
    CHECK(r.status == 405);
    CHECK(r.header("Allow") == "GET, HEAD, OPTIONS");
    CHECK(r.header("Access-Control-Allow-Origin") == "*");
    r = roundtrip(c, req_text("OPTIONS", "/items", "Origin: http://a\r\nAccess-Control-Request-Method: POST\r\n"));
    CHECK(r.status == 204);
    CHECK(r.header("Access-Control-Allow-Methods") == "GET, POST");
    CHECK_FALSE(r.has_header("Allow")); // the router did not run
    r = roundtrip(c, req_text("OPTIONS", "/items"));
    CHECK(r.status == 204);
    CHECK(r.header("Allow") == "GET, HEAD, OPTIONS"); // the router's answer, wrapped
    CHECK(r.header("Access-Control-Allow-Origin") == "*");
}

#if defined(__cpp_exceptions)
TEST_CASE("middleware: a recovery middleware catches a handler's exception; uncaught ones, from a "
          "handler or a middleware, still become 500",
          "[middleware]") {
    gh::Server srv;
    srv.use([](const gh::Request& req, gh::Response&, const gh::Next& next) {
        if (req.path == "/mw-throws") throw std::runtime_error("middleware failed");
        next();
    });
    srv.use([](const gh::Request& req, gh::Response& res, const gh::Next& next) {
        if (req.path.rfind("/recover/", 0) != 0) return next();
        try {
            next();
        } catch (const std::exception& e) {
            res.headers.clear();
            res.status = 503;
            res.text(std::string("recovered: ") + e.what() + "\n");
        }
    });
    auto boom = [](const gh::Request&, gh::Response& res) {
        res.set_header("X-Half-Done", "1");
        throw std::runtime_error("boom");
    };
    srv.get("/recover/boom", boom);
    srv.get("/boom", boom);
    srv.get("/mw-throws", [](const gh::Request&, gh::Response& res) { res.text("unreachable\n"); });
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    support::Running run(srv);

    Client c;
    REQUIRE(c.connect(srv.port()));
    support::Response r = roundtrip(c, req_text("GET", "/recover/boom"));
    CHECK(r.status == 503);
    CHECK(r.body == "recovered: boom\n");
    CHECK_FALSE(r.has_header("X-Half-Done"));
    CHECK_FALSE(r.closes()); // recovered: an ordinary answer, keep-alive
    r = roundtrip(c, req_text("GET", "/boom"));
    CHECK(r.status == 500);
    CHECK(r.body == "500 Internal Server Error\n");
    CHECK_FALSE(r.has_header("X-Half-Done"));
    CHECK(r.closes());

    support::Response m = support::get(srv.port(), "/mw-throws");
    CHECK(m.status == 500);
    CHECK(m.body == "500 Internal Server Error\n");
}
#endif

TEST_CASE("on_error: rewrites the library's own 404, 405, 500, 400, 408, 413 and 431; the status "
          "and Connection stay, the hook cannot stream",
          "[middleware]") {
    gh::Options opt;
    opt.max_body_bytes = 1000;
    opt.max_header_bytes = 2048;
    opt.max_request_line_bytes = 1024;
    opt.read_header_timeout = ms(300);
    gh::Server srv(opt);
    Trace seen;
    srv.on_error([&](int status, const gh::Request& req, gh::Response& res) {
        seen.add(std::to_string(status) + ":" + req.method + ":" + req.target + ":" +
                 std::to_string(req.headers.size()));
        res.status = 299;                         // ignored
        res.set_header("Connection", "keep-alive"); // ignored
        res.set_header("Content-Type", "application/json");
        res.body = "{\"error\":" + std::to_string(status) + "}";
        if (res.begin_stream()) res.body += "streamed"; // refused: the socket is hidden
    });
    srv.get("/items", [](const gh::Request&, gh::Response& res) { res.text("items\n"); });
    srv.get("/gone", [](const gh::Request&, gh::Response& res) { // a handler's own 404
        res.status = 404;
        res.text("mine\n");
    });
    srv.post("/upload", [](const gh::Request& req, gh::Response& res) {
        if (req.body_ok()) res.text("ok\n");
    });
#if defined(__cpp_exceptions)
    srv.get("/boom", [](const gh::Request&, gh::Response&) { throw std::runtime_error("boom"); });
#endif
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    support::Running run(srv);
    auto json = [](int status) { return "{\"error\":" + std::to_string(status) + "}"; };

    Client c;
    REQUIRE(c.connect(srv.port()));
    support::Response r = roundtrip(c, req_text("GET", "/nope"));
    CHECK(r.status == 404);
    CHECK(r.body == json(404));
    CHECK(r.header("Content-Type") == "application/json");
    CHECK_FALSE(r.closes());
    CHECK(seen.joined() == "404:GET:/nope:1");
    r = roundtrip(c, req_text("DELETE", "/items"));
    CHECK(r.status == 405);
    CHECK(r.body == json(405));
    CHECK(r.header("Allow") == "GET, HEAD, OPTIONS");
    CHECK(seen.joined() == "405:DELETE:/items:1");
    r = roundtrip(c, req_text("GET", "/gone")); // not the library's: untouched
    CHECK(r.status == 404);
    CHECK(r.body == "mine\n");
    CHECK(seen.joined() == "");
    // A malformed request after a good one: the hook sees an empty Request,
    // not the previous one; the connection still closes.
    r = roundtrip(c, "GET /items HTTP/1.1\r\nHost: t\r\n\r\nNOT A REQUEST LINE\r\n\r\n");
    CHECK(r.status == 200);
    r = c.read_response();
    CHECK(r.status == 400);
    CHECK(r.body == json(400));
    CHECK(r.closes());
    CHECK(c.wait_closed());
    CHECK(seen.joined() == "400:::0");

#if defined(__cpp_exceptions)
    r = support::get(srv.port(), "/boom");
    CHECK(r.status == 500);
    CHECK(r.body == json(500));
    CHECK(r.closes());
    CHECK(seen.joined() == "500:GET:/boom:2");
#endif
    // 413 announced by Content-Length (a parsed request), and 413 found
    // while the handler reads a chunked body (through finish_response).
    r = support::request(srv.port(), "POST", "/upload", std::string(2000, 'x'));
    CHECK(r.status == 413);
    CHECK(r.body == json(413));
    CHECK(r.closes());
    CHECK(seen.joined() == "413:POST:/upload:3");
    REQUIRE(c.connect(srv.port()));
    std::string chunk(600, 'y');
    r = roundtrip(c, "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" +
                         chunk + "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n");
    CHECK(r.status == 413);
    CHECK(r.body == json(413));
    CHECK(seen.joined() == "413:POST:/upload:2");
    // 431: the head is not parsed, so the Request is empty.
    r = support::request(srv.port(), "GET", "/items", "", "X-Big: " + std::string(4000, 'b') + "\r\n");
    CHECK(r.status == 431);
    CHECK(r.body == json(431));
    CHECK(seen.joined() == "431:::0");
    // 408: part of a head, then silence past read_header_timeout.
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send("GET /items HTTP/1.1\r\nHost"));
    r = c.read_response();
    CHECK(r.status == 408);
    CHECK(r.body == json(408));
    CHECK(seen.joined() == "408:::0");
}

TEST_CASE("on_error: not_found still answers 404s itself; a hook that throws gets the plain page",
          "[middleware]") {
    gh::Server srv;
    int calls = 0; // written on connection threads, read after each response: see below
    std::mutex mu;
    srv.not_found([](const gh::Request&, gh::Response& res) { res.text("custom 404\n"); });
    srv.on_error([&](int, const gh::Request&, gh::Response& res) {
        {
            std::lock_guard<std::mutex> lk(mu);
            ++calls;
        }
        res.set_header("X-Hooked", "1");
        res.body = "half";
#if defined(__cpp_exceptions)
        throw std::runtime_error("hook failed");
#endif
    });
    srv.get("/items", [](const gh::Request&, gh::Response& res) { res.text("items\n"); });
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    support::Running run(srv);

    support::Response r = support::get(srv.port(), "/nope");
    CHECK(r.status == 404);
    CHECK(r.body == "custom 404\n");
    CHECK_FALSE(r.has_header("X-Hooked"));
    r = support::request(srv.port(), "PUT", "/items", "x");
    CHECK(r.status == 405);
#if defined(__cpp_exceptions)
    CHECK(r.body == "405 Method Not Allowed\n"); // the plain page back
#else
    CHECK(r.body == "half");
#endif
    std::lock_guard<std::mutex> lk(mu);
    CHECK(calls == 1);
}

TEST_CASE("access log: one entry per answered request, after its response is written, with "
          "method, target, status, body bytes, version, peer, agent, referer and duration",
          "[middleware]") {
    gh::Options opt;
    opt.max_header_bytes = 2048;
    opt.max_request_line_bytes = 1024;
    gh::Server srv(opt);
    LogSink log;
    support::Gate hold; // the log hook of /held waits on it
    srv.on_request_done([&](const gh::RequestLog& r) {
        if (r.target == "/held") hold.wait();
        log.add(r);
#if defined(__cpp_exceptions)
        if (r.target == "/log-throws") throw std::runtime_error("logger failed");
#endif
    });
    srv.get("/", [](const gh::Request&, gh::Response& res) { res.text("hello, world\n"); });
    srv.get("/held", [](const gh::Request&, gh::Response& res) { res.text("held\n"); });
    srv.get("/log-throws", [](const gh::Request&, gh::Response& res) { res.text("x\n"); });
    srv.get("/slow", [](const gh::Request& req, gh::Response& res) {
        req.wait_for_cancel(ms(40)); // the work being timed, not a synchronisation
        res.text("slow\n");
    });
    srv.get("/stream", [](const gh::Request&, gh::Response& res) {
        res.set_header("Content-Type", "text/plain");
        res.write("abc");
        res.write("defg");
        res.write("h");
    });
    srv.get("/up", [](const gh::Request&, gh::Response& res) {
        res.status = 101;
        res.set_header("Connection", "Upgrade");
        res.set_header("Upgrade", "x");
        gh::Response::TakenOver t = res.take_over();
        if (t.fd >= 0) ::send(t.fd, "raw", 3, MSG_NOSIGNAL);
    });
#if defined(__cpp_exceptions)
    srv.get("/cut", [](const gh::Request&, gh::Response& res) {
        res.write("partial");
        throw std::runtime_error("stream cut");
    });
#endif
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    support::Running run(srv);
    auto before = std::chrono::system_clock::now();

    Client c;
    REQUIRE(c.connect(srv.port()));
    support::Response r = roundtrip(c, req_text("GET", "/?q=1", "User-Agent: t/1.0\r\nReferer: http://r/\r\n"));
    REQUIRE(r.status == 200);
    REQUIRE(log.wait_for(1));
    Entry e = log.at(0);
    CHECK(e.method == "GET");
    CHECK(e.target == "/?q=1");
    CHECK(e.user_agent == "t/1.0");
    CHECK(e.referer == "http://r/");
    CHECK(e.peer == "127.0.0.1");
    CHECK(e.version_minor == 1);
    CHECK(e.status == 200);
    CHECK(e.bytes == 13);
    CHECK(e.time >= before - std::chrono::seconds(1));
    CHECK(e.time <= std::chrono::system_clock::now());
    CHECK(e.combined.substr(e.combined.find(']')) ==
          "] \"GET /?q=1 HTTP/1.1\" 200 13 \"http://r/\" \"t/1.0\"");

    // The hook runs after the response is on the wire: the client has it
    // while the hook is still held.
    r = roundtrip(c, req_text("GET", "/held"));
    CHECK(r.status == 200);
    CHECK(r.body == "held\n");
    CHECK(log.size() == 1);
    hold.open();
    REQUIRE(log.wait_for(2));

    r = roundtrip(c, req_text("GET", "/slow"));
    CHECK(r.status == 200);
    r = roundtrip(c, req_text("HEAD", "/"), true);
    CHECK(r.status == 200);
    r = roundtrip(c, req_text("GET", "/stream"));
    CHECK(r.body == "abcdefgh");
    CHECK(r.chunked);
    r = roundtrip(c, req_text("GET", "/nope"));
    CHECK(r.status == 404);
    r = roundtrip(c, req_text("GET", "/log-throws"));
    CHECK(r.status == 200);
    // pipelined, and HTTP/1.0
    REQUIRE(c.send(req_text("GET", "/") + "GET /nope HTTP/1.0\r\n\r\n"));
    CHECK(c.read_response().status == 200);
    CHECK(c.read_response().status == 404);
    REQUIRE(log.wait_for(9));
    CHECK(log.at(2).target == "/slow");
    CHECK(log.at(2).duration >= std::chrono::milliseconds(40));
    CHECK(log.at(2).bytes == 5);
    CHECK(log.at(3).method == "HEAD");
    CHECK(log.at(3).bytes == 0);
    CHECK(log.at(3).common.substr(log.at(3).common.find(']')) == "] \"HEAD / HTTP/1.1\" 200 -");
    CHECK(log.at(4).target == "/stream");
    CHECK(log.at(4).bytes == 8); // body bytes, not the chunk framing
    CHECK(log.at(5).status == 404);
    CHECK(log.at(5).bytes == 14);
    CHECK(log.at(6).target == "/log-throws"); // and the connection served on after it threw
    CHECK(log.at(7).target == "/");
    CHECK(log.at(8).version_minor == 0);
    CHECK(log.at(8).common.substr(log.at(8).common.find(']')) == "] \"GET /nope HTTP/1.0\" 404 14");
    for (std::size_t i = 0; i < 9; ++i) CHECK(log.at(i).duration >= std::chrono::microseconds(0));
    CHECK(c.wait_closed()); // HTTP/1.0 without keep-alive

    // A take_over: logged with its 101 and no body bytes.
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(req_text("GET", "/up")));
    CHECK(c.read_response(support::slack(), true).status == 101);
    REQUIRE(log.wait_for(10));
    CHECK(log.at(9).status == 101);
    CHECK(log.at(9).bytes == 0);
    std::size_t next = 10;
#if defined(__cpp_exceptions)
    // A stream cut by an exception: logged with the bytes that went out.
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(req_text("GET", "/cut")));
    support::Response cut = c.read_response();
    CHECK(cut.outcome != Outcome::ok); // no terminating chunk
    REQUIRE(log.wait_for(++next));
    CHECK(log.at(next - 1).target == "/cut");
    CHECK(log.at(next - 1).status == 200);
    CHECK(log.at(next - 1).bytes == 7);
#endif
    // The parser's errors: no request, so "-" and empty fields.
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send("BAD\r\n\r\n"));
    CHECK(c.read_response().status == 400);
    REQUIRE(log.wait_for(++next));
    e = log.at(next - 1);
    CHECK(e.method.empty());
    CHECK(e.target.empty());
    CHECK(e.status == 400);
    CHECK(e.peer == "127.0.0.1");
    CHECK(e.combined.substr(e.combined.find(']')) == "] \"-\" 400 16 \"-\" \"-\"");
    REQUIRE(c.connect(srv.port()));
    REQUIRE(c.send(req_text("GET", "/", "X-Big: " + std::string(3000, 'b') + "\r\n")));
    CHECK(c.read_response().status == 431);
    REQUIRE(log.wait_for(++next));
    CHECK(log.at(next - 1).status == 431);
    CHECK(log.at(next - 1).method.empty());
    // A client that connects and leaves without a request is not logged.
    REQUIRE(c.connect(srv.port()));
    c.close();
    REQUIRE(c.connect(srv.port()));
    CHECK(roundtrip(c, req_text("GET", "/last")).status == 404);
    REQUIRE(log.wait_for(++next));
    CHECK(log.at(next - 1).target == "/last");
    CHECK(log.size() == next);
}

TEST_CASE("access log: the peer of an IPv6 connection", "[middleware]") {
    if (!support::have_ipv6_loopback()) {
        WARN("no IPv6 loopback: skipped");
        return;
    }
    gh::Server srv;
    LogSink log;
    srv.on_request_done([&](const gh::RequestLog& r) { log.add(r); });
    REQUIRE_FALSE(srv.listen("::1", 0));
    support::Running run(srv);
    Client c;
    REQUIRE(c.connect(srv.port(), "::1"));
    CHECK(roundtrip(c, req_text("GET", "/")).status == 404);
    REQUIRE(log.wait_for(1));
    CHECK(log.at(0).peer == "::1");
    CHECK(log.at(0).common.rfind("::1 - - [", 0) == 0);
}

TEST_CASE("format_common_log and format_combined_log: exact lines in UTC, '-' for empty fields, "
          "escaped quotes, backslashes and control bytes",
          "[middleware]") {
    gh::RequestLog r;
    r.method = "GET";
    r.target = "/apache_pb.gif";
    r.peer = "127.0.0.1";
    r.version_minor = 0;
    r.status = 200;
    r.bytes = 2326;
    r.time = std::chrono::system_clock::from_time_t(971211336); // 2000-10-10 20:55:36 UTC
    CHECK(gh::format_common_log(r) ==
          "127.0.0.1 - - [10/Oct/2000:20:55:36 +0000] \"GET /apache_pb.gif HTTP/1.0\" 200 2326");
    r.referer = "http://www.example.com/start.html";
    r.user_agent = "Mozilla/4.08 [en] (Win98; I ;Nav)";
    CHECK(gh::format_combined_log(r) ==
          "127.0.0.1 - - [10/Oct/2000:20:55:36 +0000] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 "
          "\"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\"");

    // The months at both ends, a zero byte count, no request line, no peer.
    gh::RequestLog e;
    e.status = 400;
    e.time = std::chrono::system_clock::from_time_t(1798761599); // 2026-12-31 23:59:59
    CHECK(gh::format_common_log(e) == "- - - [31/Dec/2026:23:59:59 +0000] \"-\" 400 -");
    CHECK(gh::format_combined_log(e) == "- - - [31/Dec/2026:23:59:59 +0000] \"-\" 400 - \"-\" \"-\"");
    e.time = std::chrono::system_clock::from_time_t(1798859045); // 2027-01-02 03:04:05
    e.method = "GET";
    e.target = "/";
    CHECK(gh::format_common_log(e) == "- - - [02/Jan/2027:03:04:05 +0000] \"GET / HTTP/1.1\" 400 -");

    // A client cannot end a field or forge a line.
    e.user_agent = std::string_view("a\"b\\c\nd\x01\xe9", 9);
    e.referer = "x\" 200 \"y";
    std::string line = gh::format_combined_log(e);
    CHECK(line.substr(line.find(" 400 -")) == " 400 - \"x\\x22 200 \\x22y\" \"a\\x22b\\x5cc\\x0ad\\x01\\xe9\"");
    CHECK(line.find('\n') == std::string::npos);
}

TEST_CASE("demo_server --access-log: one Combined Log Format line per request on stderr (curl "
          "with -A and -e, a 404, a malformed request's 400)",
          "[middleware]") {
    if (!have_tool("curl") || !have_tool("timeout")) {
        WARN("curl (or timeout) not installed: skipped");
        return;
    }
    support::Demo demo({"--port", "0", "--access-log"});
    REQUIRE(demo.port() > 0);
    std::string base = "http://127.0.0.1:" + std::to_string(demo.port());
    // Each line is awaited before the next request: lines come from the
    // connection threads, after their responses.
    std::vector<std::string> lines;
    auto await_lines = [&](std::size_t n) {
        return support::eventually([&] {
            lines = lines_of(demo.stderr_text());
            return lines.size() >= n;
        });
    };
    CHECK(run_command("timeout 20 curl -s -A 'test-agent/1.0' -e 'http://ref.example/page' " + base + "/") ==
          "hello, world\n");
    CHECK(await_lines(1));
    CHECK(run_command("timeout 20 curl -s -A 'agent \"quoted\"' " + base + "/nope?a=b") ==
          "404 Not Found\n");
    CHECK(await_lines(2));
    CHECK(run_command("timeout 20 curl -s -I -A h " + base + "/").find("200") != std::string::npos);
    CHECK(await_lines(3));
    Client c;
    REQUIRE(c.connect(demo.port()));
    REQUIRE(c.send("NOT HTTP\r\n\r\n"));
    CHECK(c.read_response().status == 400);
    CHECK(await_lines(4));
    INFO(demo.stderr_text());
    REQUIRE(lines.size() == 4);
    const std::string date = R"(\[\d\d/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/\d{4}:\d\d:\d\d:\d\d \+0000\])";
    const std::string peer = R"(127\.0\.0\.1 - - )";
    CHECK(std::regex_match(lines[0], std::regex(peer + date +
                                                R"( "GET / HTTP/1\.1" 200 13 "http://ref\.example/page" "test-agent/1\.0")")));
    CHECK(std::regex_match(lines[1], std::regex(peer + date +
                                                R"( "GET /nope\?a=b HTTP/1\.1" 404 14 "-" "agent \\x22quoted\\x22")")));
    CHECK(std::regex_match(lines[2], std::regex(peer + date + R"( "HEAD / HTTP/1\.1" 200 - "-" "h")")));
    CHECK(std::regex_match(lines[3], std::regex(peer + date + R"( "-" 400 16 "-" "-")")));

    demo.signal(SIGTERM);
    CHECK(demo.wait_exit() == 0);
    std::vector<std::string> all = lines_of(demo.stderr_text());
    REQUIRE(all.size() == 5); // and the shutdown summary after them
    CHECK(all[4].rfind("demo_server: shutdown drained=yes", 0) == 0);
}
