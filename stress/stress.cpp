// The stress suite of graceful_http (issue 4, items 1-5): shutdown under
// load, construct/serve/destroy churn, slow and hostile clients, a handler
// that never returns, and 10,000 idle keep-alive connections.
//
// Build and run all of it: bash stress/run.sh [--sanitizer=tsan|asan]
// One case, one process:    build/stress/stress CASE [--name=value ...]
//   CASE is load, churn, hostile, stuck or scale; --name=value overrides a
//   size (the names are the first arguments of p.get() below).
//
// Every case runs in its own process, so fd, thread and RSS figures are
// not polluted by another case, and a crash (SIGPIPE, SIGSEGV, a
// sanitizer report) fails that case alone. A case prints "[ok]"/"[FAIL]"
// for every criterion, "FIGURE ..." for every number the README quotes,
// and a last line "RESULT <case> PASS|FAIL"; its exit status says the same.
//
// Synchronisation is on the library's own events (a handler waiting in
// req.wait_for_shutdown(), a handler arriving at a Gate, shutdown()
// returning) and on latches. Sleeps only shape load (a request that takes
// 20 ms, a load balancer that takes a while to react, a byte every
// 500 ms). Conditions the library publishes only through /proc or
// stats() (a thread has exited, a connection was accepted) are awaited
// with support::eventually(), a bounded wait on the condition itself.
#include "stress_util.hpp"

#include <csignal>
#include <sys/wait.h>
#include <memory>
#include <random>
#include <thread>

namespace stress {
namespace {

using support::Outcome;

// ==================================================================
// Case 1: shutdown under load, repeated
// ==================================================================
namespace load {

// refused: connect() failed, nothing was sent, safe to retry (whatever
// the errno; those other than ECONNREFUSED are listed separately).
// unsent: connected, but send() failed before a byte of the request left
// (the connection was reset in the accept queue): also safe to retry.
enum Res { kOk, kRefused, kAmbiguous, kTimeout, kBadStatus, kUnsent, kNumRes };
const char* const kResName[kNumRes] = {"ok", "refused", "ambiguous", "timeout", "bad status",
                                       "reset before sending"};

struct Attempt {
    Clock::time_point sent;
    Res res = kOk;
    bool sent_request = false; // connected and (at least began to) send
    bool reused = false;       // keep-alive: the connection had served a request before
    bool reset = false;        // ambiguous by a reset (else by EOF)
    int connect_errno = 0;     // refused: connect()'s errno
};

const std::string kRequest = "GET /sleep?ms=20 HTTP/1.1\r\nHost: stress\r\n\r\n";
const ms kReadBound{10000};

// send_request: one send() of the small request. kOk: all sent; kUnsent:
// nothing sent; kAmbiguous: part of it (never seen: it is 44 bytes).
Res send_request(int fd) {
    ssize_t n = ::send(fd, kRequest.data(), kRequest.size(), MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(kRequest.size())) return kOk;
    return n <= 0 ? kUnsent : kAmbiguous;
}

Res classify(const support::Response& r) {
    switch (r.outcome) {
    case Outcome::ok: return r.status == 200 ? kOk : kBadStatus;
    case Outcome::eof:
    case Outcome::reset: return kAmbiguous; // request sent, no response: did it run?
    case Outcome::timeout: return kTimeout;
    case Outcome::refused: return kRefused;
    }
    return kTimeout;
}


// A client that opens a new connection for every request.
Attempt fresh_once(int port) {
    Attempt a;
    a.sent = Clock::now();
    support::Client c;
    if (!c.connect(port)) {
        a.connect_errno = errno;
        a.res = kRefused;
        return a;
    }
    a.sent = Clock::now();
    a.sent_request = true;
    if ((a.res = send_request(c.fd())) != kOk) return a;
    support::Response r = c.read_response(kReadBound);
    a.res = classify(r);
    a.reset = r.outcome == Outcome::reset;
    return a;
}

// peer_closed: the server has closed this pooled connection (EOF or an
// error is waiting). A careful client (Go's Transport, curl) checks
// this before reusing a connection; what is left is the true race.
bool peer_closed(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    char b;
    ssize_t n = ::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false;
    return true; // EOF, an error, or bytes nobody asked for
}

// A client that keeps one connection for as long as the server allows.
class KeepAlive {
public:
    Attempt once(int port) {
        if (c_.connected() && peer_closed(c_.fd())) c_.close();
        Attempt a;
        a.sent = Clock::now();
        if (!c_.connected()) {
            if (!c_.connect(port)) {
                a.connect_errno = errno;
                a.res = kRefused;
                return a;
            }
            used_ = false;
        }
        a.reused = used_;
        a.sent = Clock::now();
        a.sent_request = true;
        if ((a.res = send_request(c_.fd())) != kOk) {
            c_.close();
            return a;
        }
        support::Response r = c_.read_response(kReadBound);
        a.res = classify(r);
        a.reset = r.outcome == Outcome::reset;
        if (a.res != kOk || r.closes()) c_.close();
        else used_ = true;
        return a;
    }

private:
    support::Client c_;
    bool used_ = false;
};

struct Control {
    explicit Control(int clients) : warm(clients) {}
    std::atomic<bool> stop{false};
    Latch warm; // every client has completed two requests
};

// Sends until told to stop or until the server refuses (it has stopped
// listening); never retries: every attempt is recorded as it ended.
void client_loop(bool fresh, int port, Control& ctl, std::vector<Attempt>& out) {
    KeepAlive ka;
    int oks = 0;
    bool warm_counted = false;
    while (!ctl.stop.load(std::memory_order_acquire)) {
        Attempt a = fresh ? fresh_once(port) : ka.once(port);
        out.push_back(a);
        if (a.res == kOk && ++oks == 2) {
            ctl.warm.count_down();
            warm_counted = true;
        }
        if (a.res == kRefused || a.res == kUnsent) break;
    }
    if (!warm_counted) ctl.warm.count_down();
}

struct Totals {
    std::uint64_t n[2][kNumRes] = {};      // [keep-alive?][result]
    std::uint64_t requests[2] = {};        // attempts that sent a request
    std::uint64_t ambiguous_reused[2] = {}; // ambiguous on a reused keep-alive connection
    std::uint64_t ambiguous_reset[2] = {};  // ambiguous by a reset rather than an EOF
    std::uint64_t in_drain = 0;            // requests sent after shutdown() began
    std::uint64_t late = 0;                // requests sent after the drain delay had ended
    std::map<int, std::uint64_t> odd_connect; // refused with an errno other than ECONNREFUSED
    double latest_after_shutdown = 0;      // ms from shutdown() to the last request sent
    std::uint64_t backlog = 0, with_close = 0, idle_closed = 0, silent_closed = 0;
    std::uint64_t forced = 0, not_drained = 0, setup_failures = 0;
    std::vector<double> elapsed;           // ShutdownReport::elapsed, ms
    long cycles = 0;
};

constexpr int kClients = 16; // half a new connection per request, half keep-alive

// One server, one load, one shutdown. `delay`: drain_delay in ms (0: none).
// With a delay, a load balancer long-polls /watch, learns of the drain the
// moment it begins (req.wait_for_shutdown), and after `lag` ms tells the
// clients to stop; they finish the request in hand and send no more.
void run_cycle(long delay, long lag_max, long jitter_max, std::mt19937& rng, Totals& t,
               Verdict& v) {
    support::Gate watching; // declared first: outlives the server and its handlers
    gh::Options opt;
    opt.drain_delay = ms(delay);
    gh::Server srv(opt);
    srv.get("/sleep", [](const gh::Request& req, gh::Response& res) {
        req.wait_for_cancel(ms(std::atol(req.query_param("ms").c_str())));
        res.text("slept\n");
    });
    srv.get("/watch", [&watching](const gh::Request& req, gh::Response& res) {
        watching.arrive();
        req.wait_for_shutdown(ms(60000));
        res.text(req.shutdown_requested() ? "draining\n" : "still serving\n");
    });
    if (gh::Error e = srv.listen("127.0.0.1", 0)) {
        if (++t.setup_failures <= 3) v.note("listen failed: " + e.message());
        return;
    }
    const int port = srv.port();
    support::Running running(srv);
    Control ctl(kClients);
    std::thread balancer;
    if (delay > 0) {
        long lag = std::uniform_int_distribution<long>(0, lag_max)(rng);
        balancer = std::thread([&ctl, port, lag] {
            support::Client c;
            if (c.connect(port) && c.send("GET /watch HTTP/1.1\r\nHost: lb\r\n\r\n"))
                (void)c.read_response(ms(60000));
            // The balancer saw "draining"; it needs `lag` ms to take the
            // server out of rotation (a load pattern, not a wait).
            std::this_thread::sleep_for(ms(lag));
            ctl.stop.store(true, std::memory_order_release);
        });
        if (!watching.wait_arrived(1) && ++t.setup_failures <= 3)
            v.note("the load balancer's /watch never reached its handler");
    }
    std::vector<std::vector<Attempt>> out(kClients);
    std::vector<std::thread> clients;
    for (int i = 0; i < kClients; ++i)
        clients.emplace_back(client_loop, i < kClients / 2, port, std::ref(ctl), std::ref(out[i]));
    if (!ctl.warm.wait(support::slack()) && ++t.setup_failures <= 3)
        v.note("clients did not complete two requests each in time");
    // Let shutdown land anywhere in the 20 ms request cycle.
    std::this_thread::sleep_for(ms(std::uniform_int_distribution<long>(0, jitter_max)(rng)));

    const Clock::time_point t0 = Clock::now();
    gh::ShutdownReport rep = srv.shutdown(ms(10000));
    ctl.stop.store(true, std::memory_order_release); // without a delay: stop after the drain
    for (auto& th : clients) th.join();
    if (balancer.joinable()) balancer.join();
    if (!running.wait_done()) ++t.setup_failures;

    ++t.cycles;
    t.elapsed.push_back(static_cast<double>(rep.elapsed.count()));
    t.backlog += rep.served_from_backlog;
    t.with_close += rep.served_with_close;
    t.idle_closed += rep.idle_closed;
    t.silent_closed += rep.silent_closed;
    t.forced += rep.connections_forced;
    if (!rep.drained || !rep.completed) ++t.not_drained;
    const Clock::time_point drain_end = t0 + ms(delay); // the library's is later still
    for (int i = 0; i < kClients; ++i) {
        const int k = i < kClients / 2 ? 0 : 1;
        for (const Attempt& a : out[i]) {
            ++t.n[k][a.res];
            if (a.res == kRefused && a.connect_errno != ECONNREFUSED) ++t.odd_connect[a.connect_errno];
            if (!a.sent_request || a.res == kUnsent) continue;
            ++t.requests[k];
            if (a.res == kAmbiguous && a.reused) ++t.ambiguous_reused[k];
            if (a.res == kAmbiguous && a.reset) ++t.ambiguous_reset[k];
            if (a.sent > t0) {
                ++t.in_drain;
                t.latest_after_shutdown = std::max(t.latest_after_shutdown, ms_between(t0, a.sent));
            }
            if (delay > 0 && a.sent >= drain_end) ++t.late;
        }
    }
}

std::string kind_line(const Totals& t, int k) {
    double per10k = t.requests[k] ? 1e4 * static_cast<double>(t.n[k][kAmbiguous]) /
                                        static_cast<double>(t.requests[k])
                                  : 0;
    double per100 = t.cycles ? 100.0 * static_cast<double>(t.n[k][kAmbiguous]) /
                                   static_cast<double>(t.cycles)
                             : 0;
    std::string s = strf("%-22s %6llu requests: %6llu ok, %4llu refused, %3llu ambiguous "
                         "(%.1f per 10k requests, %.1f per 100 shutdowns)",
                         k ? "keep-alive clients:" : "new-connection clients:",
                         static_cast<unsigned long long>(t.requests[k]),
                         static_cast<unsigned long long>(t.n[k][kOk]),
                         static_cast<unsigned long long>(t.n[k][kRefused]),
                         static_cast<unsigned long long>(t.n[k][kAmbiguous]), per10k, per100);
    if (t.n[k][kAmbiguous] > 0)
        s += strf(" [%llu by reset, %llu by EOF%s]",
                  static_cast<unsigned long long>(t.ambiguous_reset[k]),
                  static_cast<unsigned long long>(t.n[k][kAmbiguous] - t.ambiguous_reset[k]),
                  k ? strf("; %llu on a reused connection",
                           static_cast<unsigned long long>(t.ambiguous_reused[k])).c_str()
                    : "");
    for (int r : {kTimeout, kBadStatus, kUnsent})
        if (t.n[k][r]) s += strf(", %llu %s", static_cast<unsigned long long>(t.n[k][r]), kResName[r]);
    return s;
}

void print_totals(const Totals& t, Verdict& v, const std::string& title) {
    v.figure(title);
    v.figure("  " + kind_line(t, 0));
    v.figure("  " + kind_line(t, 1));
    v.figure(strf("  requests sent after shutdown() began: %llu (latest %.0f ms after); drain "
                  "counters: %llu served with close, %llu served from backlog, %llu idle closed, "
                  "%llu silent closed, %llu forced",
                  static_cast<unsigned long long>(t.in_drain), t.latest_after_shutdown,
                  static_cast<unsigned long long>(t.with_close),
                  static_cast<unsigned long long>(t.backlog),
                  static_cast<unsigned long long>(t.idle_closed),
                  static_cast<unsigned long long>(t.silent_closed),
                  static_cast<unsigned long long>(t.forced)));
    if (!t.odd_connect.empty()) {
        std::string odd;
        for (auto& e : t.odd_connect)
            odd += strf("%s%llu x %s", odd.empty() ? "" : ", ",
                        static_cast<unsigned long long>(e.second), std::strerror(e.first));
        v.figure("  refused connects with another errno (nothing sent, safe to retry): " + odd);
    }
    v.figure(strf("  shutdown() elapsed: median %.0f ms, p95 %.0f ms, max %.0f ms",
                  percentile(t.elapsed, 0.5), percentile(t.elapsed, 0.95),
                  percentile(t.elapsed, 1.0)));
}

} // namespace load

int case_load(const Params& p) {
    using namespace load;
    Verdict v("load");
    const long cycles = p.get("cycles", 100, 20);
    const long cycles_with = p.get("cycles_with", cycles, cycles);
    const long cycles_without = p.get("cycles_without", cycles, cycles);
    const long delay = p.get("drain_delay_ms", 300, 800);
    const long lag_max = p.get("lag_max_ms", 150, 300);
    const long jitter = p.get("jitter_ms", 40, 40);
    std::mt19937 rng(static_cast<unsigned>(p.get("seed", 4, 4)));
    v.note(strf("%ld shutdowns with drain_delay %ld ms, then %ld without; %d clients each "
                "(%d new connection per request, %d keep-alive) sending GET /sleep?ms=20",
                cycles_with, delay, cycles_without, kClients, kClients / 2, kClients / 2));
    v.note(strf("protocol: a load balancer long-polls /watch (req.wait_for_shutdown); when the "
                "drain begins it waits 0-%ld ms, then stops the clients, which finish the "
                "request in hand; the drain delay ends %ld ms after shutdown() began",
                lag_max, delay));

    Totals with;
    auto start = Clock::now();
    for (long i = 0; i < cycles_with; ++i) run_cycle(delay, lag_max, jitter, rng, with, v);
    long with_ms = ms_since(start);
    print_totals(with, v, strf("with drain_delay %ld ms, %ld shutdowns under load (%.1f s):",
                               delay, with.cycles, static_cast<double>(with_ms) / 1000));
    const std::uint64_t amb = with.n[0][kAmbiguous] + with.n[1][kAmbiguous];
    v.check(with.setup_failures == 0 && with.cycles == cycles_with,
            strf("%ld cycles ran (%llu setup failures)", with.cycles,
                 static_cast<unsigned long long>(with.setup_failures)));
    v.check(amb == 0, strf("with the drain delay: %llu ambiguous failures (required: 0)",
                           static_cast<unsigned long long>(amb)));
    std::uint64_t other = 0;
    for (int k = 0; k < 2; ++k)
        other += with.n[k][kTimeout] + with.n[k][kBadStatus] + with.n[k][kUnsent];
    v.check(other == 0, strf("with the drain delay: %llu timeouts, bad statuses or connections reset before sending",
                             static_cast<unsigned long long>(other)));
    v.check(with.not_drained == 0 && with.forced == 0,
            strf("every shutdown drained (%llu did not, %llu connections forced)",
                 static_cast<unsigned long long>(with.not_drained),
                 static_cast<unsigned long long>(with.forced)));
    v.check(with.in_drain > 0 && with.with_close > 0,
            strf("the drain delay was exercised: %llu requests sent after shutdown began, %llu "
                 "responses carried Connection: close",
                 static_cast<unsigned long long>(with.in_drain),
                 static_cast<unsigned long long>(with.with_close)));
    if (with.late > 0 || with.n[0][kRefused] + with.n[1][kRefused] > 0)
        v.note(strf("[warn] %llu requests were sent after the drain delay had ended (the "
                    "machine stalled a client past the protocol); refused: %llu",
                    static_cast<unsigned long long>(with.late),
                    static_cast<unsigned long long>(with.n[0][kRefused] + with.n[1][kRefused])));

    Totals without;
    start = Clock::now();
    for (long i = 0; i < cycles_without; ++i) run_cycle(0, 0, jitter, rng, without, v);
    long without_ms = ms_since(start);
    print_totals(without, v,
                 strf("without a drain delay, %ld shutdowns under load, clients sending until "
                      "refused (%.1f s) -- the residue HTTP/1.1 leaves:",
                      without.cycles, static_cast<double>(without_ms) / 1000));
    other = 0;
    for (int k = 0; k < 2; ++k)
        other += without.n[k][kTimeout] + without.n[k][kBadStatus];
    v.check(without.setup_failures == 0 && without.cycles == cycles_without,
            strf("%ld cycles ran without a delay", without.cycles));
    v.check(other == 0, strf("without a delay: %llu timeouts or bad statuses",
                             static_cast<unsigned long long>(other)));
    v.check(without.not_drained == 0 && without.forced == 0,
            strf("every shutdown drained (%llu did not, %llu forced)",
                 static_cast<unsigned long long>(without.not_drained),
                 static_cast<unsigned long long>(without.forced)));
    v.note("without a delay the ambiguous count is informational: it is the race HTTP/1.1 "
           "cannot close (a request sent at the instant the server closes)");
    return v.finish();
}

// ==================================================================
// Case 2: churn
// ==================================================================

// One life: construct, listen on port 0, serve on a thread, three
// requests (one on its own connection, two on a keep-alive connection
// left open), shutdown, destroy. Returns "" or what went wrong.
std::string churn_cycle() {
    gh::Server srv;
    srv.get("/", [](const gh::Request&, gh::Response& res) { res.text("churn\n"); });
    if (gh::Error e = srv.listen("127.0.0.1", 0)) return "listen: " + e.message();
    const int port = srv.port();
    std::string why;
    {
        support::Running running(srv);
        support::Response r1 = support::get(port, "/");
        if (r1.outcome != Outcome::ok || r1.status != 200)
            why = strf("one-off request: %s %d", support::outcome_name(r1.outcome), r1.status);
        support::Client c;
        if (!c.connect(port)) return "connect refused";
        for (int i = 0; i < 2 && why.empty(); ++i) {
            support::Response r;
            if (c.send("GET / HTTP/1.1\r\nHost: churn\r\n\r\n")) r = c.read_response();
            if (r.outcome != Outcome::ok || r.status != 200 || r.closes())
                why = strf("keep-alive request %d: %s %d", i + 1, support::outcome_name(r.outcome),
                           r.status);
        }
        gh::ShutdownReport rep = srv.shutdown(ms(5000));
        if (why.empty() && (!rep.drained || rep.connections_forced != 0))
            why = "shutdown did not drain";
        if (why.empty() && rep.idle_closed != 1)
            why = strf("idle_closed %llu, expected 1", static_cast<unsigned long long>(rep.idle_closed));
        if (why.empty() && (!c.wait_closed(ms(5000)) || c.last_was_reset()))
            why = "the idle keep-alive connection was not closed with a clean FIN";
        if (!running.wait_done() && why.empty()) why = "serve() did not return";
        if (why.empty() && running.error()) why = "serve: " + running.error().message();
    }
    return why;
}

int case_churn(const Params& p) {
    Verdict v("churn");
    start_runtime_threads();
    const long cycles = p.get("cycles", 1000, 500);
    const long warm = p.get("warmup", 100, 50);
    const long rss_tol_kib = p.get("rss_tolerance_kib", 2048, 2048);
    v.note(strf("%ld cycles of construct, listen :0, serve on a thread, 3 requests, shutdown, "
                "destroy; figures compared between cycle %ld and cycle %ld",
                cycles, warm, cycles));
    const int fd0 = fds(), th0 = threads();
    const long rss0 = rss_kib();
    int fd_warm = -1, th_warm = -1;
    long rss_warm = -1;
    int fd_max = fd0, th_max = th0;
    long bad = 0, thread_lag = 0;
    std::string first_bad;
    auto start = Clock::now();
    for (long i = 1; i <= cycles; ++i) {
        std::string why = churn_cycle();
        if (!why.empty() && bad++ == 0) first_bad = strf("cycle %ld: %s", i, why.c_str());
        // Joined threads leave /proc/self/task a moment after the join.
        if (threads() != th0) {
            if (!support::eventually([&] { return threads() == th0; }, ms(5000))) {
                if (bad++ == 0) first_bad = strf("cycle %ld: %d threads left", i, threads() - th0);
                if (bad >= 3) break; // growing: no need to wait 5 s a cycle to prove it
            }
            ++thread_lag;
        }
        fd_max = std::max(fd_max, fds());
        th_max = std::max(th_max, threads());
        if (i == warm) {
            fd_warm = fds();
            th_warm = threads();
            rss_warm = rss_kib();
        }
    }
    const long total_ms = ms_since(start);
    const int fd1 = fds(), th1 = threads();
    const long rss1 = rss_kib();
    v.figure(strf("%ld construct/listen/serve/shutdown/destroy cycles in %.1f s (%.2f ms each), "
                  "%ld requests", cycles, static_cast<double>(total_ms) / 1000,
                  static_cast<double>(total_ms) / static_cast<double>(cycles), cycles * 3));
    v.figure(strf("fds: %d before, %d at cycle %ld, %d at cycle %ld (max %d)", fd0, fd_warm, warm,
                  fd1, cycles, fd_max));
    v.figure(strf("threads: %d before, %d at cycle %ld, %d at cycle %ld (max %d)", th0, th_warm,
                  warm, th1, cycles, th_max));
    v.figure(strf("RSS: %ld KiB before, %ld KiB at cycle %ld, %ld KiB at cycle %ld (%+ld KiB "
                  "after warm-up)", rss0, rss_warm, warm, rss1, cycles, rss1 - rss_warm));
    v.check(bad == 0, strf("every cycle served and drained cleanly (%ld failed%s%s)", bad,
                           bad ? "; first: " : "", first_bad.c_str()));
    v.check(fd1 == fd0 && fd_max == fd0,
            strf("no fd growth: %d -> %d (max %d)", fd0, fd1, fd_max));
    v.check(th1 == th0 && th_max <= th0,
            strf("no thread growth: %d -> %d (after %ld of the cycles a joined thread took a "
                 "moment to leave /proc/self/task)", th0, th1, thread_lag));
    if (kSanitizer)
        v.note(strf("RSS growth %+ld KiB is informational under a sanitizer (quarantine and "
                    "shadow memory grow by design)", rss1 - rss_warm));
    else
        v.check(rss1 - rss_warm < rss_tol_kib,
                strf("RSS growth after warm-up %+ld KiB < %ld KiB", rss1 - rss_warm, rss_tol_kib));
    return v.finish();
}

// ==================================================================
// Case 3: slow and hostile clients
// ==================================================================

// Dribblers: connections that send one header byte every 500 ms and
// never finish. One thread drives them all with poll().
class Dribblers {
public:
    ~Dribblers() {
        for (One& d : d_)
            if (d.fd >= 0) ::close(d.fd);
    }
    long connect_all(int port, long n) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        for (long i = 0; i < n; ++i) {
            One d;
            d.start = Clock::now(); // before connect(): the server's clock starts later
            d.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (d.fd < 0) break;
            if (::connect(d.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
                ::close(d.fd);
                break;
            }
            ::fcntl(d.fd, F_SETFL, O_NONBLOCK);
            d_.push_back(d);
            send_next(d_.back());
        }
        open_ = static_cast<long>(d_.size());
        return open_;
    }
    // run dribbles until the server has closed every connection or bound.
    void run(ms bound) {
        const auto hard = Clock::now() + bound;
        auto next = Clock::now() + ms(500);
        std::vector<pollfd> pfds;
        std::vector<std::size_t> idx;
        while (open_ > 0 && Clock::now() < hard) {
            pfds.clear();
            idx.clear();
            for (std::size_t i = 0; i < d_.size(); ++i)
                if (d_[i].fd >= 0) {
                    pfds.push_back(pollfd{d_[i].fd, POLLIN, 0});
                    idx.push_back(i);
                }
            long wait = std::max<long>(0, std::chrono::duration_cast<ms>(next - Clock::now()).count());
            int n = ::poll(pfds.data(), pfds.size(), static_cast<int>(wait));
            for (std::size_t j = 0; n > 0 && j < pfds.size(); ++j)
                if (pfds[j].revents != 0) receive(d_[idx[j]]);
            if (Clock::now() >= next) {
                for (One& d : d_)
                    if (d.fd >= 0) send_next(d);
                next += ms(500);
            }
        }
    }
    long open() const { return open_; }
    long cut() const { return cut_.load(); }
    long got_408() const {
        long n = 0;
        for (const One& d : d_) n += d.got.rfind("HTTP/1.1 408", 0) == 0;
        return n;
    }
    long resets() const {
        long n = 0;
        for (const One& d : d_) n += d.reset;
        return n;
    }
    std::vector<double> cut_ms() const {
        std::vector<double> v;
        for (const One& d : d_)
            if (d.fd < 0) v.push_back(d.cut_ms);
        return v;
    }
    std::size_t max_bytes_sent() const {
        std::size_t m = 0;
        for (const One& d : d_) m = std::max(m, d.sent);
        return m;
    }

private:
    struct One {
        int fd = -1;
        Clock::time_point start;
        std::size_t sent = 0;
        std::string got;
        double cut_ms = 0;
        bool reset = false;
    };
    void send_next(One& d) {
        static const std::string text = "GET /hello HTTP/1.1\r\nHost: dribbler\r\nX-Dribble: " +
                                        std::string(400, 'd') + "\r\n\r\n";
        if (d.sent + 1 >= text.size()) return; // never complete the head
        if (::send(d.fd, &text[d.sent], 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) ++d.sent;
    }
    void receive(One& d) {
        char buf[4096];
        for (;;) {
            ssize_t n = ::recv(d.fd, buf, sizeof buf, 0);
            if (n > 0) {
                d.got.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            d.reset = n < 0;
            d.cut_ms = ms_between(d.start, Clock::now());
            ::close(d.fd);
            d.fd = -1;
            --open_;
            ++cut_;
            return;
        }
    }
    std::vector<One> d_;
    long open_ = 0;
    std::atomic<long> cut_{0};
};

const std::string kPostHead = "Host: hostile\r\nContent-Length: 1000000\r\n\r\n";

int case_hostile(const Params& p) {
    Verdict v("hostile");
    start_runtime_threads();
    const long n_drib = p.get("dribblers", 500, 300);
    const long n_normal = p.get("normal", 50, 50);
    const long header_timeout = p.get("header_timeout_ms", 3000, 4000);
    const long k = p.get("vanishers", 20, 10);
    raise_nofile(2 * n_drib + 1024);
    struct sigaction sa {};
    ::sigaction(SIGPIPE, nullptr, &sa);
    v.check(sa.sa_handler == SIG_DFL,
            "SIGPIPE keeps its default action (death) in this process, so a server write "
            "without MSG_NOSIGNAL would kill it");

    // What the handlers touch is declared first: it outlives the server.
    support::Gate upload_gate, ignore_gate, stream_gate;
    std::atomic<int> stream_out{0}, stream_cut{0}, whole_in{0}, upload_out{0}, upload_failed{0};
    gh::Options opt;
    opt.read_header_timeout = ms(header_timeout);
    gh::Server srv(opt);
    srv.get("/hello", [](const gh::Request&, gh::Response& res) { res.text("hello\n"); });
    srv.get("/stream", [&](const gh::Request&, gh::Response& res) {
        stream_gate.arrive();
        const std::string chunk(64 * 1024, 's');
        std::size_t sent = 0;
        bool ok = true;
        while (sent < (std::size_t{1} << 30) && (ok = res.write(chunk))) sent += chunk.size();
        if (!ok) ++stream_cut;
        ++stream_out;
    });
    srv.get("/whole", [&](const gh::Request&, gh::Response& res) {
        ++whole_in;
        res.body.assign(std::size_t{16} << 20, 'w');
    });
    srv.post("/upload", [&](const gh::Request& req, gh::Response& res) {
        upload_gate.arrive();
        const std::string& body = req.body();
        if (!req.body_ok()) ++upload_failed;
        res.text(std::to_string(body.size()) + "\n");
        ++upload_out;
    });
    srv.post("/ignore", [&](const gh::Request&, gh::Response& res) {
        ignore_gate.arrive();
        res.text("ignored\n");
    });
    listen_local(srv, v);
    const int port = srv.port();
    support::Running running(srv);
    const int th_base = threads(), fd_base = fds();

    // 1. The dribblers: each holds a connection thread.
    Dribblers drib;
    long connected = drib.connect_all(port, n_drib);
    bool accepted = support::eventually(
        [&] { return srv.stats().active_connections >= static_cast<std::size_t>(connected); });
    v.check(connected == n_drib && accepted,
            strf("%ld/%ld dribblers connected and accepted (%d server threads)", connected, n_drib,
                 threads() - th_base));
    std::thread dribbling([&] { drib.run(ms(header_timeout + 20000)); });

    // 2. Normal requests meanwhile: 5 clients, 10 each, 50 ms apart.
    std::mutex mu;
    std::vector<double> lat;
    long normal_bad = 0;
    std::vector<std::thread> normals;
    const long per = n_normal / 5;
    for (int c = 0; c < 5; ++c)
        normals.emplace_back([&] {
            for (long i = 0; i < per; ++i) {
                auto t = Clock::now();
                support::Response r = support::request(port, "GET", "/hello", "", "", ms(5000));
                double l = ms_between(t, Clock::now());
                std::lock_guard<std::mutex> lk(mu);
                lat.push_back(l);
                if (r.outcome != Outcome::ok || r.status != 200 || l >= 1000) ++normal_bad;
                std::this_thread::sleep_for(ms(50));
            }
        });
    for (auto& t : normals) t.join();
    const long cut_during_normal = drib.cut();
    v.check(normal_bad == 0 && static_cast<long>(lat.size()) == per * 5,
            strf("%zu normal requests beside %ld dribblers: all 200 in < 1 s (median %.1f ms, "
                 "max %.1f ms; %ld bad)", lat.size(), connected, percentile(lat, 0.5),
                 percentile(lat, 1.0), normal_bad));
    v.check(cut_during_normal == 0,
            strf("the dribblers were all still connected during the normal requests (%ld cut)",
                 cut_during_normal));

    // 3. Clients that vanish: mid-headers, mid-body, mid-response.
    long vanished = 0;
    for (long i = 0; i < k; ++i) {
        for (int rst = 0; rst < 2; ++rst) { // mid-headers, FIN then RST
            support::Client c;
            if (c.connect(port) && c.send("GET /hello HTTP/1.1\r\nHost: hostile\r\nX-Half: ab")) {
                if (rst) c.abort();
                else c.close();
                ++vanished;
            }
        }
        { // mid-body, the handler reading it: Content-Length 1e6, 10 KB sent, FIN
            support::Client c;
            if (c.connect(port) && c.send("POST /upload HTTP/1.1\r\n" + kPostHead) &&
                c.send(std::string(10000, 'b')) && upload_gate.wait_arrived(static_cast<int>(i + 1))) {
                c.close();
                ++vanished;
            }
        }
        { // mid-body, the handler ignoring it: RST
            support::Client c;
            if (c.connect(port) && c.send("POST /ignore HTTP/1.1\r\n" + kPostHead) &&
                c.send(std::string(10000, 'b')) && ignore_gate.wait_arrived(static_cast<int>(i + 1))) {
                c.abort();
                ++vanished;
            }
        }
        { // mid-response, streamed: read 256 KiB of a 1 GiB stream, then RST
            support::Client c;
            if (c.connect(port) && c.send("GET /stream HTTP/1.1\r\nHost: hostile\r\n\r\n")) {
                auto deadline = Clock::now() + support::slack();
                while (c.buffer().size() < 256 * 1024 && c.fill(deadline) == Outcome::ok) {
                }
                c.abort();
                ++vanished;
            }
        }
        { // mid-response, streamed, never read at all: RST once the handler runs
            support::Client c;
            if (c.connect(port) && c.send("GET /stream HTTP/1.1\r\nHost: hostile\r\n\r\n") &&
                stream_gate.wait_arrived(static_cast<int>(2 * i + 2))) {
                c.abort();
                ++vanished;
            }
        }
        { // mid-response, one 16 MiB writev: read 64 KiB, then RST
            support::Client c;
            if (c.connect(port) && c.send("GET /whole HTTP/1.1\r\nHost: hostile\r\n\r\n")) {
                auto deadline = Clock::now() + support::slack();
                while (c.buffer().size() < 64 * 1024 && c.fill(deadline) == Outcome::ok) {
                }
                c.abort();
                ++vanished;
            }
        }
    }
    v.check(vanished == 7 * k, strf("%ld/%ld vanishing clients did their part (7 kinds x %ld)",
                                    vanished, 7 * k, k));

    // 4. The dribblers are cut by read_header_timeout.
    dribbling.join();
    std::vector<double> cuts = drib.cut_ms();
    v.check(drib.open() == 0 && drib.got_408() == connected,
            strf("all %ld dribblers were answered 408 and closed by read_header_timeout (%ld got "
                 "408, %ld still open, %ld saw a reset)", connected, drib.got_408(), drib.open(),
                 drib.resets()));
    v.check(!cuts.empty() && percentile(cuts, 0) >= static_cast<double>(header_timeout) - 5 &&
                percentile(cuts, 1.0) <= static_cast<double>(header_timeout) + 5000,
            strf("cut after %.0f..%.0f ms (read_header_timeout %ld ms; each had sent <= %zu bytes)",
                 percentile(cuts, 0), percentile(cuts, 1.0), header_timeout,
                 drib.max_bytes_sent()));

    // 5. Every server thread is freed.
    bool idle = support::eventually([&] {
        gh::Stats s = srv.stats();
        return s.active_connections == 0 && s.active_requests == 0;
    }, ms(15000));
    gh::Stats s = srv.stats();
    v.check(idle, strf("stats: active_connections %zu, active_requests %zu (both must be 0)",
                       s.active_connections, s.active_requests));
    bool th_ok = support::eventually([&] { return threads() == th_base; }, ms(15000));
    v.check(th_ok, strf("threads back to baseline: %d (baseline %d)", threads(), th_base));
    bool fd_ok = support::eventually([&] { return fds() == fd_base; }, ms(5000));
    v.check(fd_ok, strf("fds back to baseline: %d (baseline %d)", fds(), fd_base));
    v.check(stream_gate.arrived() == 2 * k && stream_out.load() == 2 * k &&
                stream_cut.load() == 2 * k,
            strf("stream handlers: %d started, %d returned, %d saw write() fail", stream_gate.arrived(),
                 stream_out.load(), stream_cut.load()));
    v.check(upload_out.load() == k && upload_failed.load() == k,
            strf("upload handlers: %d returned, %d saw body_ok() false", upload_out.load(),
                 upload_failed.load()));
    v.check(whole_in.load() == k && ignore_gate.arrived() == k,
            strf("16 MiB and ignored-body handlers: %d and %d ran", whole_in.load(),
                 ignore_gate.arrived()));
    gh::ShutdownReport rep = srv.shutdown(ms(5000));
    v.check(rep.drained && rep.connections_forced == 0,
            strf("shutdown afterwards drained at once (%lld ms)",
                 static_cast<long long>(rep.elapsed.count())));
    v.figure(strf("%ld dribblers (1 byte / 500 ms) cut at %.0f..%.0f ms by read_header_timeout "
                  "%ld ms; %zu normal requests beside them: median %.1f ms, max %.1f ms",
                  connected, percentile(cuts, 0), percentile(cuts, 1.0), header_timeout,
                  lat.size(), percentile(lat, 0.5), percentile(lat, 1.0)));
    v.figure(strf("%ld vanishing clients (mid-headers FIN/RST, mid-body FIN/RST, mid-response "
                  "RST x3): no crash, no SIGPIPE, every thread freed", vanished));
    return v.finish();
}

// ==================================================================
// Case 4: a handler that never returns
// ==================================================================

// What the stuck handlers block on. Never released during the test;
// released at the end so the process exits with no thread left behind.
// Allocated once and never freed, so a thread still blocked at exit
// never waits on a destroyed condition variable.
class Forever {
public:
    void block() {
        std::unique_lock<std::mutex> lk(mu_);
        ++arrived_;
        cv_.notify_all();
        cv_.wait(lk, [&] { return released_; });
    }
    bool wait_arrived(int n, ms bound) {
        std::unique_lock<std::mutex> lk(mu_);
        return cv_.wait_for(lk, bound, [&] { return arrived_ >= n; });
    }
    void release() {
        std::lock_guard<std::mutex> lk(mu_);
        released_ = true;
        cv_.notify_all();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    int arrived_ = 0;
    bool released_ = false;
};
Forever& forever() {
    static Forever* f = new Forever;
    return *f;
}

std::unique_ptr<gh::Server> stuck_server(Verdict& v) {
    auto srv = std::make_unique<gh::Server>();
    srv->get("/stuck", [](const gh::Request&, gh::Response& res) {
        forever().block(); // ignores shutdown_requested() and cancelled()
        res.text("too late\n");
    });
    listen_local(*srv, v);
    return srv;
}

int case_stuck(const Params& p) {
    Verdict v("stuck");
    start_runtime_threads();
    const long deadline = p.get("deadline_ms", 500, 1000);
    const int fd0 = fds(), th0 = threads();

    // 4a. shutdown(deadline) with the handler stuck, then the destructor.
    long sd_ms = 0, dtor_ms = 0;
    int th_stuck = 0, fd_stuck = 0;
    {
        std::unique_ptr<gh::Server> srv = stuck_server(v);
        gh::Server* s = srv.get();
        std::thread serving([s] { (void)s->serve(); });
        support::Client c;
        v.check(c.connect(s->port()) && c.send("GET /stuck HTTP/1.1\r\nHost: stuck\r\n\r\n") &&
                    forever().wait_arrived(1, support::slack()),
                "the handler is stuck");
        auto t0 = Clock::now();
        gh::ShutdownReport rep = s->shutdown(ms(deadline));
        sd_ms = ms_since(t0);
        v.check(sd_ms >= deadline - 5 && sd_ms <= deadline + 1500,
                strf("shutdown(%ld ms) returned after %ld ms (report: %lld ms)", deadline, sd_ms,
                     static_cast<long long>(rep.elapsed.count())));
        v.check(rep.connections_forced == 1 && !rep.drained && rep.completed,
                strf("report: connections_forced %zu (want 1), drained %d (want 0), completed %d",
                     rep.connections_forced, rep.drained, rep.completed));
        support::Response r = c.read_response(ms(3000));
        v.check(r.outcome == Outcome::eof || r.outcome == Outcome::reset,
                strf("its client saw the forced close: %s", support::outcome_name(r.outcome)));
        c.close();
        serving.join();
        auto td = Clock::now();
        srv.reset();
        dtor_ms = ms_since(td);
        v.check(dtor_ms < 1000, strf("the Server destructor returned in %ld ms", dtor_ms));
        th_stuck = threads() - th0;
        fd_stuck = fds() - fd0;
        v.check(th_stuck == 1, strf("one stuck thread outlives the Server: %+d threads", th_stuck));
    }

    // 4b. The destructor alone, while serve() runs and the handler is stuck.
    long dtor2_ms = 0;
    {
        std::unique_ptr<gh::Server> srv = stuck_server(v);
        gh::Server* s = srv.get();
        std::thread serving([s] { (void)s->serve(); });
        support::Client c;
        v.check(c.connect(s->port()) && c.send("GET /stuck HTTP/1.1\r\nHost: stuck\r\n\r\n") &&
                    forever().wait_arrived(2, support::slack()),
                "a second handler is stuck");
        auto td = Clock::now();
        srv.reset(); // close(), force, detach, wait for serve() to return
        dtor2_ms = ms_since(td);
        serving.join();
        v.check(dtor2_ms < 1500,
                strf("~Server while serving with a stuck handler returned in %ld ms", dtor2_ms));
        support::Response r = c.read_response(ms(3000));
        v.check(r.outcome == Outcome::eof || r.outcome == Outcome::reset,
                strf("its client saw the forced close: %s", support::outcome_name(r.outcome)));
        v.check(threads() - th0 == 2, strf("two stuck threads now: %+d threads", threads() - th0));
    }

    // At the end of the process: release them and watch them clean up.
    forever().release();
    bool th_ok = support::eventually([&] { return threads() == th0; });
    bool fd_ok = support::eventually([&] { return fds() == fd0; });
    v.check(th_ok && fd_ok,
            strf("released at the end: threads %+d, fds %+d relative to the start (both 0)",
                 threads() - th0, fds() - fd0));

    v.figure(strf("a handler that never returns: shutdown(%ld ms) returned after %ld ms (the "
                  "deadline + %ld ms of force grace) with connections_forced 1, drained false; "
                  "the destructor then took %ld ms; ~Server alone (no shutdown) took %ld ms",
                  deadline, sd_ms, sd_ms - deadline, dtor_ms, dtor2_ms));
    v.figure(strf("the stuck thread: at the deadline its socket is shut down (its client sees "
                  "EOF) and, after the grace, the thread is detached; it holds the server's "
                  "shared core, so %+d thread and %+d fds (its socket + the 2 wake pipes) stay "
                  "after the Server object is gone, until the handler returns; released at the "
                  "end, it closes them and frees the core (threads and fds back to baseline; "
                  "ASan build: no use after free)", th_stuck, fd_stuck));
    return v.finish();
}

// ==================================================================
// Case 5: scale
// ==================================================================

// The clients live in a child process forked before the server exists:
// its own fd table (10,000 client sockets on top of 10,000 server
// sockets would not fit a common 20,000 limit), and its memory stays out
// of the server's RSS. Parent and child talk in lines over a socketpair;
// if the parent dies the child reads EOF and exits.
bool write_line(int fd, const std::string& line) {
    std::string l = line + "\n";
    return ::send(fd, l.data(), l.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(l.size());
}

std::string read_line(int fd, ms bound) {
    std::string line;
    auto deadline = Clock::now() + bound;
    for (;;) {
        long left = std::chrono::duration_cast<ms>(deadline - Clock::now()).count();
        if (left <= 0) return "";
        pollfd pf{fd, POLLIN, 0};
        if (::poll(&pf, 1, static_cast<int>(left)) <= 0) continue;
        char c;
        if (::read(fd, &c, 1) != 1) return "";
        if (c == '\n') return line;
        line.push_back(c);
    }
}

// scale_clients: the child. "open PORT N" -> "opened SERVED BAD SECONDS";
// "again" (one more request on an idle connection) -> "again OK MS";
// "fins" (after the shutdown) -> "fins CLEAN OTHER".
[[noreturn]] void scale_clients(int ctl) {
    long port = 0, n = 0;
    std::sscanf(read_line(ctl, ms(600000)).c_str(), "open %ld %ld", &port, &n);
    std::vector<support::Client> clients(static_cast<std::size_t>(std::max(n, 1L)));
    std::atomic<long> served{0}, bad{0};
    auto t = Clock::now();
    std::vector<std::thread> openers; // 4 openers, one connection at a time each,
    for (long o = 0; o < 4; ++o)      // so the accept backlog never fills
        openers.emplace_back([&, o] {
            for (long i = o; i < n; i += 4) {
                support::Client& c = clients[static_cast<std::size_t>(i)];
                support::Response r;
                if (c.connect(static_cast<int>(port)) &&
                    c.send("GET / HTTP/1.1\r\nHost: scale\r\n\r\n"))
                    r = c.read_response(ms(10000));
                if (r.outcome == Outcome::ok && r.status == 200 && !r.closes()) ++served;
                else ++bad;
            }
        });
    for (auto& th : openers) th.join();
    write_line(ctl, strf("opened %ld %ld %.3f", served.load(), bad.load(),
                         ms_between(t, Clock::now()) / 1000));
    if (read_line(ctl, ms(600000)) == "again") {
        support::Client& old = clients[static_cast<std::size_t>(n / 2)];
        t = Clock::now();
        support::Response r;
        if (old.send("GET / HTTP/1.1\r\nHost: scale\r\n\r\n")) r = old.read_response(ms(5000));
        write_line(ctl, strf("again %d %.3f", r.outcome == Outcome::ok && r.status == 200,
                             ms_between(t, Clock::now())));
    }
    if (read_line(ctl, ms(600000)) == "fins") {
        long clean = 0;
        for (support::Client& c : clients)
            if (c.connected() && c.wait_closed(ms(2000)) && !c.last_was_reset()) ++clean;
        write_line(ctl, strf("fins %ld %ld", clean, n - clean));
    }
    clients.clear();
    std::fflush(nullptr);
    ::_exit(0);
}

int case_scale(const Params& p) {
    Verdict v("scale");
    long n = p.get("conns", 10000, 1000);
    const long want = n + 1024;
    const long lim = raise_nofile(want); // before the fork: both processes get it
    if (lim < want) {
        v.note(strf("[warn] RLIMIT_NOFILE is %ld, not %ld: %ld connections instead of %ld", lim,
                    want, lim - 1024, n));
        n = lim - 1024;
    }
    int sp[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
        v.check(false, "socketpair");
        return v.finish();
    }
    std::fflush(nullptr);
    const pid_t child = ::fork(); // this process has one thread: the child is clean
    if (child == 0) {
        ::close(sp[0]);
        scale_clients(sp[1]);
    }
    ::close(sp[1]);
    const int ctl = sp[0];
    v.check(child > 0, "forked the client process");

    gh::Options opt;
    opt.spare_threads = 0; // exact thread counts: no thread outlives its connection
    gh::Server srv(opt);
    srv.get("/", [](const gh::Request&, gh::Response& res) { res.text("scale\n"); });
    listen_local(srv, v);
    const int port = srv.port();
    support::Running running(srv);
    (void)support::get(port, "/"); // the first connection thread's arena, before the baseline
    support::eventually([&] { return srv.stats().active_connections == 0; });
    const long rss0 = rss_kib();
    const int th0 = threads(), fd0 = fds();
    v.note(strf("server process baseline while serving: %d threads, %d fds, RSS %ld KiB", th0,
                fd0, rss0));

    long served = 0, bad = 0;
    double open_s = 0;
    write_line(ctl, strf("open %d %ld", port, n));
    std::sscanf(read_line(ctl, ms(120000)).c_str(), "opened %ld %ld %lf", &served, &bad, &open_s);
    const long rss1 = rss_kib();
    const int th1 = threads(), fd1 = fds();
    const gh::Stats st = srv.stats();
    const double per_conn = static_cast<double>(rss1 - rss0) / static_cast<double>(n);
    v.check(served == n, strf("%ld/%ld connections served one request each (%ld failed), in "
                              "%.1f s", served, n, bad, open_s));
    v.check(st.active_connections == static_cast<std::size_t>(n) && th1 - th0 == n,
            strf("all held open: active_connections %zu, threads %+d, fds %+d",
                 st.active_connections, th1 - th0, fd1 - fd0));

    // A fresh client, and an old idle connection, with n open.
    auto t = Clock::now();
    support::Response fresh = support::request(port, "GET", "/", "", "", ms(5000));
    const double fresh_ms = ms_between(t, Clock::now());
    v.check(fresh.outcome == Outcome::ok && fresh.status == 200 && fresh_ms < 1000,
            strf("a fresh client with %ld open: %s %d in %.2f ms (< 1000)", n,
                 support::outcome_name(fresh.outcome), fresh.status, fresh_ms));
    int again_ok = 0;
    double again_ms = 0;
    write_line(ctl, "again");
    std::sscanf(read_line(ctl, ms(20000)).c_str(), "again %d %lf", &again_ok, &again_ms);
    v.check(again_ok == 1 && again_ms < 1000,
            strf("an idle connection's second request: %s in %.2f ms", again_ok ? "ok" : "FAILED",
                 again_ms));
    // The fresh client's connection ends with a lingering close.
    support::eventually(
        [&] { return srv.stats().active_connections == static_cast<std::size_t>(n); });

    // Shutdown drains them all: every one is idle, so every one closes.
    t = Clock::now();
    gh::ShutdownReport rep = srv.shutdown(ms(30000));
    const double sd_ms = ms_between(t, Clock::now());
    v.check(rep.drained && rep.idle_closed == static_cast<std::uint64_t>(n),
            strf("shutdown: drained %d, idle_closed %llu (want %ld), forced %zu", rep.drained,
                 static_cast<unsigned long long>(rep.idle_closed), n, rep.connections_forced));
    v.check(sd_ms < 10000, strf("drained %ld idle connections in %.0f ms (< 10 s)", n, sd_ms));
    long clean = 0, other = -1;
    write_line(ctl, "fins");
    std::sscanf(read_line(ctl, ms(60000)).c_str(), "fins %ld %ld", &clean, &other);
    v.check(clean == n, strf("%ld/%ld clients saw a clean FIN (%ld did not)", clean, n, other));
    running.join();
    bool th_ok = support::eventually([&] { return threads() == th0 - 1; }, ms(15000));
    v.check(th_ok, strf("threads back to baseline after serve() returned: %d (want %d)",
                        threads(), th0 - 1));
    int status = 0;
    bool reaped = support::eventually([&] { return ::waitpid(child, &status, WNOHANG) == child; },
                                      ms(30000));
    if (!reaped) {
        ::kill(child, SIGKILL); // ours, and stuck
        ::waitpid(child, &status, 0);
    }
    v.check(reaped && WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "the client process exited cleanly");
    ::close(ctl);

    v.figure(strf("%ld concurrent idle keep-alive connections, each served one request, opened "
                  "in %.1f s: server process %d threads (%+d), %d fds", n, open_s, th1, th1 - th0,
                  fd1));
    v.figure(strf("server RSS %.1f MiB -> %.1f MiB: %.1f KiB per connection (thread stack pages "
                  "touched + connection state; each stack reserves %zu KiB of address space)",
                  static_cast<double>(rss0) / 1024, static_cast<double>(rss1) / 1024, per_conn,
                  gh::Options{}.thread_stack_size / 1024));
    v.figure(strf("with %ld open: a fresh client served in %.2f ms; an idle one's next request "
                  "in %.2f ms", n, fresh_ms, again_ms));
    v.figure(strf("shutdown with %ld idle connections: %.0f ms (report %lld ms), idle_closed %llu, "
                  "%ld clean FINs", n, sd_ms, static_cast<long long>(rep.elapsed.count()),
                  static_cast<unsigned long long>(rep.idle_closed), clean));
    return v.finish();
}

} // namespace
} // namespace stress

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    // Default SIGPIPE action: a write to a vanished client without
    // MSG_NOSIGNAL would kill the process, and run.sh would say so.
    std::signal(SIGPIPE, SIG_DFL);
    const std::string name = argc > 1 ? argv[1] : "";
    stress::Params p(argc, argv);
    std::printf("== stress %s%s\n", name.c_str(), stress::kSanitizer ? " (sanitizer sizes)" : "");
    if (name == "load") return stress::case_load(p);
    if (name == "churn") return stress::case_churn(p);
    if (name == "hostile") return stress::case_hostile(p);
    if (name == "stuck") return stress::case_stuck(p);
    if (name == "scale") return stress::case_scale(p);
    std::fprintf(stderr, "usage: %s load|churn|hostile|stuck|scale [--name=value ...]\n", argv[0]);
    return 2;
}
