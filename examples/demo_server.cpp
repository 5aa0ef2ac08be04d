// demo_server: the demo contract -- hello, echo, sleep, stream, healthz, metrics, files; drains on
// SIGTERM; socket activation, sd_notify and a zero-downtime re-exec on SIGHUP.
// Build: make build/examples/demo_server   (g++ -std=c++17 -O2 -pthread -I. examples/demo_server.cpp)
// Run:   build/examples/demo_server --port 8080; then kill -HUP (re-exec) or Ctrl-C (twice to force)
#include "graceful_http.hpp"

#include <charconv>  // strict integer parsing of flags and query parameters
#include <cinttypes> // PRIu64 for the summary line
#include <climits>   // PATH_MAX for /proc/self/exe
#include <cstdio>
#include <cstdlib>   // realpath
#include <cstring>   // strchr
#include <string>
#include <vector>

using graceful_http::Duration;
using graceful_http::Request;
using graceful_http::Response;

namespace {

const char kUsage[] = "usage: demo_server [--host ADDR] [--port N] [--grace-ms N]"
                      " [--drain-delay-ms N] [--max-connections N] [--access-log] [--root DIR]\n";

// parse_int accepts only a whole decimal number within [lo, hi].
bool parse_int(std::string_view s, long lo, long hi, long& out) {
    long v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) return false;
    out = v;
    return true;
}

// int_param reads a query parameter in [lo, hi]; otherwise answers 400.
bool int_param(const Request& req, Response& res, const char* name, long hi, long& out) {
    if (parse_int(req.query_param(name), 0, hi, out)) return true;
    res.status = 400;
    res.text(std::string(name) + " must be an integer in 0.." + std::to_string(hi) + "\n", "text/plain");
    return false;
}

void metric(std::string& out, const char* name, const char* type, const char* help,
            unsigned long long value) {
    out += std::string("# HELP graceful_http_") + name + " " + help + "\n# TYPE graceful_http_" +
           name + " " + type + "\ngraceful_http_" + name + " " + std::to_string(value) + "\n";
}

// self_path is this program as an absolute path, resolved at startup so
// a re-exec after a chdir or a binary upgrade starts what is at that path.
std::string self_path(const char* argv0) {
    char buf[PATH_MAX];
    if (std::strchr(argv0, '/') != nullptr && ::realpath(argv0, buf) != nullptr) return buf;
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1); // found through PATH
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : argv0;
}

} // namespace

int main(int argc, char** argv) {
    // A signal that arrives before run_until_signal installs its handlers
    // (say, right after the `listening on` line) waits instead of killing us.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop_signals, sig);
    ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::vector<std::string> args{self_path(argv[0])};
    args.insert(args.end(), argv + 1, argv + argc);

    std::string host = "127.0.0.1", root; // --root DIR: serve DIR at /files/
    long port = 8080, grace_ms = 10000, drain_delay_ms = 0, max_conns = 0;
    bool access_log = false;
    for (int i = 1; i < argc; i += 2) {
        std::string flag = argv[i];
        if (flag == "-h" || flag == "--help") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (flag == "--access-log") { // a flag without a value
            access_log = true;
            --i;
            continue;
        }
        std::string_view v = i + 1 < argc ? argv[i + 1] : ""; // missing value fails below
        bool ok = false;
        if (flag == "--host") { host = v; ok = !host.empty(); }
        else if (flag == "--port") ok = parse_int(v, 0, 65535, port);
        else if (flag == "--grace-ms") ok = parse_int(v, 0, 86400000, grace_ms);
        else if (flag == "--drain-delay-ms") ok = parse_int(v, 0, 86400000, drain_delay_ms);
        else if (flag == "--max-connections") ok = parse_int(v, 0, 1000000, max_conns);
        else if (flag == "--root") { root = v; ok = !root.empty(); }
        if (!ok) {
            std::fprintf(stderr, "demo_server: bad flag or value: %s '%.*s'\n%s", flag.c_str(),
                         static_cast<int>(v.size()), v.data(), kUsage);
            return 2;
        }
    }

    graceful_http::Options opt;
    opt.drain_delay = Duration(drain_delay_ms);
    opt.max_connections = static_cast<std::size_t>(max_conns);
    graceful_http::Server srv(opt);

    srv.get("/", [](const Request&, Response& res) { res.text("hello, world\n", "text/plain"); });
    srv.post("/echo", [](const Request& req, Response& res) {
        const std::string& body = req.body();
        if (!req.body_ok()) return; // the server answers 400/408/413 itself
        std::string_view type = req.header("Content-Type");
        res.text(body, type.empty() ? "application/octet-stream" : type);
    });
    srv.get("/sleep", [](const Request& req, Response& res) {
        long ms = 0;
        if (!int_param(req, res, "ms", 60000, ms)) return;
        // A graceful shutdown lets the wait run to its end; only the forced
        // close at the deadline (or a second signal) cuts it short.
        if (req.wait_for_cancel(Duration(ms))) return; // nobody left to answer
        res.text("slept " + std::to_string(ms) + " ms\n", "text/plain");
    });
    srv.get("/stream", [](const Request& req, Response& res) {
        long chunks = 0, interval_ms = 0;
        if (!int_param(req, res, "chunks", 1000000, chunks) ||
            !int_param(req, res, "interval_ms", 60000, interval_ms))
            return;
        res.set_header("Content-Type", "text/plain");
        if (!res.begin_stream()) return;
        for (long i = 0; i < chunks; ++i) {
            // Shutdown ends the stream early; returning writes the final 0-chunk.
            if (i > 0 && req.wait_for_shutdown(Duration(interval_ms))) return;
            if (!res.write("chunk " + std::to_string(i) + "\n")) return;
        }
    });
    srv.get("/healthz", [&srv](const Request&, Response& res) {
        bool draining = srv.is_draining() || srv.is_shutting_down();
        res.status = draining ? 503 : 200;
        res.text(draining ? "draining\n" : "ok\n", "text/plain");
    });
    srv.get("/metrics", [&srv](const Request&, Response& res) {
        graceful_http::Stats s = srv.stats();
        std::string out;
        metric(out, "active_connections", "gauge", "Open client connections.", s.active_connections);
        metric(out, "active_requests", "gauge", "Requests being handled now.", s.active_requests);
        metric(out, "connections_total", "counter", "Connections accepted.", s.connections_total);
        metric(out, "requests_total", "counter", "Requests received.", s.requests_total);
        metric(out, "drain_served_from_backlog_total", "counter",
               "Connections accepted from the backlog after the listener stopped.",
               s.drain.served_from_backlog);
        metric(out, "drain_served_with_close_total", "counter",
               "Responses sent with Connection: close because shutdown had begun.",
               s.drain.served_with_close);
        metric(out, "drain_idle_closed_total", "counter", "Idle keep-alive connections closed by the drain.",
               s.drain.idle_closed);
        metric(out, "drain_silent_closed_total", "counter",
               "Connections closed by the drain before sending a byte.", s.drain.silent_closed);
        metric(out, "drain_connections_forced_total", "counter",
               "Connections force-closed at the shutdown deadline.", s.drain.connections_forced);
        res.text(out, "text/plain; version=0.0.4");
    });
    // ---- Uploads and forms: bodies streamed, never held whole ----
    graceful_http::RouteOptions unlimited;
    unlimited.max_body_bytes = 0; // any length: the body is never held in memory
    auto upload = [](const Request& req, Response& res) {
        std::uint64_t n = 0;
        if (!req.read_body([&](std::string_view piece) { return n += piece.size(), true; }))
            return; // the server answers 400/408/413 itself
        res.text("received " + std::to_string(n) + " bytes\n", "text/plain");
    };
    srv.put("/upload", upload, unlimited);
    srv.post("/upload", upload, unlimited);
    srv.post("/form", [](const Request& req, Response& res) {
        std::string out, value;
        std::uint64_t size = 0;
        const graceful_http::MultipartPart* part = nullptr;
        graceful_http::MultipartCallbacks cb;
        cb.on_part = [&](const graceful_http::MultipartPart& p) {
            part = &p;
            value.clear();
            size = 0;
            return true;
        };
        cb.on_data = [&](std::string_view d) {
            size += d.size();
            if (!part->has_filename) value.append(d);
            return value.size() <= 64 * 1024; // a field, unlike a file, is held: bound it
        };
        cb.on_part_end = [&] {
            out += part->name + (part->has_filename ? ": " + part->filename + " " +
                                                          std::to_string(size) + " bytes\n"
                                                    : "=" + value + "\n");
            return true;
        };
        graceful_http::FormResult r = graceful_http::read_multipart(req, cb);
        if (r.stopped) r.http_status = 413;
        std::string_view type = req.header("Content-Type");
        if (r.http_status == 415 && type.substr(0, type.find(';')) == "application/x-www-form-urlencoded") {
            graceful_http::FormFields fields;
            r = graceful_http::read_form(req, fields);
            for (const auto& f : fields) out += f.first + "=" + f.second + "\n";
        }
        if (r.http_status != 0) {
            res.status = r.http_status;
            out = std::to_string(r.http_status) + " malformed form\n";
        }
        res.text(out, "text/plain");
    }, unlimited);

    // ---- Files, uploads, forms, logging ----
    // --access-log: one Combined Log Format line per answered request on
    // stderr, written by one fwrite (stdio's lock keeps lines whole).
    if (access_log)
        srv.on_request_done([](const graceful_http::RequestLog& r) {
            std::string line = graceful_http::format_combined_log(r) + "\n";
            std::fwrite(line.data(), 1, line.size(), stderr);
        });

    // Static files: GET/HEAD /files/<path> is <root>/<path> (ranges, conditional
    // requests, never a byte outside root). Without --root, /files/ is 404.
    if (!root.empty()) srv.serve_dir("/files/", root);

    // Socket activation (systemd, or a predecessor's handoff): serve on the
    // inherited listener instead of binding.
    std::vector<graceful_http::InheritedListener> inherited = graceful_http::inherited_listeners();
    graceful_http::Error err = inherited.empty() ? srv.listen(host, static_cast<int>(port))
                                                 : srv.listen_fd(inherited[0].fd);
    if (err) {
        std::fprintf(stderr, "demo_server: %s\n", err.message().c_str());
        return 1;
    }
    std::printf("listening on %s\n", srv.url().c_str());
    std::fflush(stdout);

    graceful_http::RunOptions run;
    run.grace = Duration(drain_delay_ms + grace_ms); // the grace period starts after the delay
    // SIGHUP: start a copy of ourselves on the same socket; once it accepts,
    // drain. If it never gets ready we keep serving.
    run.on_reload = [&] {
        int pid = 0;
        if (auto e = graceful_http::start_successor(args, {{srv.listener_fd(), "http"}},
                                                    std::chrono::seconds(10), &pid)) {
            std::fprintf(stderr, "demo_server: reload failed, still serving: %s\n", e.message().c_str());
            return false;
        }
        // Under systemd (NotifyAccess=main) the successor is the main process
        // from now on; our own STOPPING=1 is then ignored.
        graceful_http::sd_notify("MAINPID=" + std::to_string(pid));
        std::fprintf(stderr, "demo_server: reload: pid %d is ready, draining\n", pid);
        return true;
    };
    graceful_http::GroupReport g = graceful_http::run_until_signal({&srv}, run);
    if (g.error) {
        std::fprintf(stderr, "demo_server: %s\n", g.error.message().c_str());
        return 1;
    }
    const graceful_http::ShutdownReport& r = g.reports[0];
    std::fprintf(stderr,
                 "demo_server: shutdown drained=%s elapsed_ms=%lld forced=%zu served_from_backlog=%" PRIu64
                 " served_with_close=%" PRIu64 " idle_closed=%" PRIu64 " silent_closed=%" PRIu64 "\n",
                 r.drained ? "yes" : "no", static_cast<long long>(r.elapsed.count()), r.connections_forced,
                 r.served_from_backlog, r.served_with_close, r.idle_closed, r.silent_closed);
    return r.drained ? 0 : 3;
}
