// httplib_peer: the demo-server contract (../../../shared/demo-server.md)
// for GET /, POST /echo, GET /sleep and GET /healthz on cpp-httplib, from
// Debian's libcpp-httplib-dev, for bench/run.sh.
//
//   httplib_peer [--host ADDR] [--port N] [--grace-ms N] [--drain-delay-ms N]
//                [--threads N] [--thread-per-conn] [--idle-interval-ms N] [--backlog N]
//
// Tuned as a user would for a benchmark: keep-alive is not capped at
// httplib's default of 5 requests per connection; --threads sizes the
// standard ThreadPool (default 64, one per wrk connection, since a pool
// thread serves one connection at a time); --thread-per-conn replaces the
// pool with a thread per connection (used for the idle-connection RSS
// scenario, where a pool of 10,000 idle threads would be absurd).
// --idle-interval-ms sets how often a thread waiting on an idle keep-alive
// connection wakes to poll (httplib's default is 10 ms: at ~900 idle
// connections those wake-ups alone saturate a core; bench/run.sh passes
// 1000 for the idle-connection scenario).
// --backlog re-listens the bound socket with that backlog: Debian's
// libcpp-httplib is built with its default CPPHTTPLIB_LISTEN_BACKLOG of 5,
// so without it a burst of connections overflows the accept queue and the
// kernel drops their SYNs (bench/concurrency.sh passes 1024, as our server
// and nginx use).
// SIGTERM/SIGINT: /healthz 503 for --drain-delay-ms, then stop(), which
// closes the listener and lets the pool finish; exit 0, or 3 if that takes
// longer than --grace-ms (or on a second signal).
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

// A TaskQueue that runs every task (one connection) on its own thread.
class ThreadPerTask : public httplib::TaskQueue {
public:
    void enqueue(std::function<void()> fn) override {
        {
            std::lock_guard<std::mutex> lk(mu_);
            ++live_;
        }
        std::thread([this, fn = std::move(fn)] {
            fn();
            std::lock_guard<std::mutex> lk(mu_);
            if (--live_ == 0) cv_.notify_all();
        }).detach();
    }
    void shutdown() override {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return live_ == 0; });
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    long live_ = 0;
};

std::atomic<bool> g_draining{false};

} // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    int port = 8080;
    long grace_ms = 10000, drain_ms = 0, threads = 64, idle_ms = -1, backlog = 0;
    bool per_conn = false;
    for (int i = 1; i < argc; ++i) {
        std::string f = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "httplib_peer: %s needs a value\n", f.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (f == "--host") host = val();
        else if (f == "--port") port = std::atoi(val().c_str());
        else if (f == "--grace-ms") grace_ms = std::atol(val().c_str());
        else if (f == "--drain-delay-ms") drain_ms = std::atol(val().c_str());
        else if (f == "--max-connections") (void)val();
        else if (f == "--threads") threads = std::atol(val().c_str());
        else if (f == "--thread-per-conn") per_conn = true;
        else if (f == "--idle-interval-ms") idle_ms = std::atol(val().c_str());
        else if (f == "--backlog") backlog = std::atol(val().c_str());
        else {
            std::fprintf(stderr, "httplib_peer: unknown flag %s\n", f.c_str());
            return 2;
        }
    }

    // Signals are taken by a dedicated thread with sigwait.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    httplib::Server svr;
    if (per_conn) svr.new_task_queue = [] { return new ThreadPerTask(); };
    else svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    svr.set_keep_alive_max_count(1000000000);
    svr.set_keep_alive_timeout(60);
    svr.set_tcp_nodelay(true);
    if (idle_ms >= 0) svr.set_idle_interval(idle_ms / 1000, (idle_ms % 1000) * 1000);
    int listen_fd = -1; // captured to re-listen with --backlog
    svr.set_socket_options([&listen_fd](socket_t sock) {
        httplib::default_socket_options(sock);
        listen_fd = sock;
    });

    svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("hello, world\n", "text/plain");
    });
    svr.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
        std::string type = req.get_header_value("Content-Type");
        res.set_content(req.body, type.empty() ? "application/octet-stream" : type.c_str());
    });
    svr.Get("/sleep", [](const httplib::Request& req, httplib::Response& res) {
        long ms = std::atol(req.get_param_value("ms").c_str());
        if (ms < 0 || ms > 60000) {
            res.status = 400;
            res.set_content("ms must be an integer in 0..60000\n", "text/plain");
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        res.set_content("slept " + std::to_string(ms) + " ms\n", "text/plain");
    });
    svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
        bool d = g_draining.load();
        res.status = d ? 503 : 200;
        res.set_content(d ? "draining\n" : "ok\n", "text/plain");
    });

    int bound = port;
    if (port == 0) bound = svr.bind_to_any_port(host);
    else if (!svr.bind_to_port(host, port)) bound = -1;
    if (bound <= 0) {
        std::fprintf(stderr, "httplib_peer: listen %s:%d: bind failed\n", host.c_str(), port);
        return 1;
    }
    if (backlog > 0 && (listen_fd < 0 || ::listen(listen_fd, static_cast<int>(backlog)) != 0)) {
        std::fprintf(stderr, "httplib_peer: listen backlog %ld failed\n", backlog);
        return 1;
    }
    bool v6 = host.find(':') != std::string::npos;
    std::printf("listening on http://%s%s%s:%d\n", v6 ? "[" : "", host.c_str(), v6 ? "]" : "", bound);
    std::fflush(stdout);

    std::thread sig([&] {
        int s = 0;
        sigwait(&set, &s);
        auto start = std::chrono::steady_clock::now();
        g_draining = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(drain_ms));
        svr.stop();
        // Watchdog: a second signal or the grace running out exits 3.
        std::thread([&, start] {
            timespec ts{grace_ms / 1000, (grace_ms % 1000) * 1000000};
            siginfo_t info;
            sigtimedwait(&set, &info, &ts);
            (void)start;
            std::fprintf(stderr, "httplib_peer: shutdown forced\n");
            std::_Exit(3);
        }).detach();
    });
    svr.listen_after_bind(); // returns after stop() and the task queue's shutdown
    if (!g_draining) {
        std::fprintf(stderr, "httplib_peer: listen failed\n");
        std::_Exit(1);
    }
    std::fprintf(stderr, "httplib_peer: shutdown drained=yes\n");
    sig.join();
    return 0;
}
