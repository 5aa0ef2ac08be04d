// Operations (SHUTDOWN.md 16-19, demo-server.md "Operations"): server
// groups, systemd socket activation, sd_notify, the SIGHUP re-exec
// handoff under continuous load, the connection-state and shutdown hooks
// and stats(). Real processes and sockets on loopback only.
//
// Readiness without sleeps: "a request is in flight" is read from the
// demo's own /metrics gauge (graceful_http_active_requests counts the
// /metrics request itself, hence the +1); "the demo has let go of the
// listener" from /proc/PID/fd; "a successor is ready" from the line the
// old process prints once start_successor() has seen its readiness.
// Processes of a handoff chain are re-parented to this test
// (PR_SET_CHILD_SUBREAPER), so every one of them is reaped and its exit
// code checked, and only they are ever signalled.
#include <catch2/catch.hpp>

#include "support.hpp"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <set>
#include <string>
#if defined(__linux__)
#include <sys/prctl.h> // PR_SET_CHILD_SUBREAPER
#endif
#include <sys/stat.h>
#include <sys/un.h>
#include <vector>

using namespace std::chrono_literals;
using graceful_http::ConnState;
using graceful_http::GroupReport;
using graceful_http::Request;
using graceful_http::Response;
using graceful_http::RunOptions;
using graceful_http::Server;
using support::Client;
using support::Clock;
using support::elapsed_ms;
using support::eventually;
using support::Gate;
using support::ms;
using support::Outcome;
using support::slack;
using std::string;

namespace {

// The other examples sit next to demo_server in the same build flavour.
string example_path(const string& name) {
    string demo = GRACEFUL_HTTP_DEMO_PATH;
    return demo.substr(0, demo.rfind('/') + 1) + name;
}

bool starts_with(const string& s, const string& prefix) { return s.rfind(prefix, 0) == 0; }

// ---- a child process with its own environment, optional fd 3, line-read output ----

// Child starts `path args...` with this process's environment minus the
// systemd variables, plus `env`. With `listener` >= 0 it does what
// systemd does for socket activation: the socket becomes fd 3 and
// LISTEN_FDS=1, LISTEN_PID=<the child's pid>, LISTEN_FDNAMES=http are set.
// stdout and stderr are pipes read line by line. The destructor kills
// and reaps the child if it is still running.
class Child {
public:
    Child(const string& path, const std::vector<string>& args, std::vector<string> env = {},
          int listener = -1) {
        for (char** e = graceful_http::detail::process_environ(); *e != nullptr; ++e) {
            string v = *e;
            if (starts_with(v, "LISTEN_") || starts_with(v, "NOTIFY_SOCKET=") ||
                starts_with(v, "WATCHDOG_") || starts_with(v, "GRACEFUL_HTTP_READY_FD="))
                continue;
            env.push_back(v);
        }
        if (listener >= 0) {
            env.push_back("LISTEN_FDS=1");
            env.push_back("LISTEN_FDNAMES=http");
            env.push_back("LISTEN_PID=0000000000"); // the child writes its pid here
        }
        // Everything is built before fork(): the child only dup2s and execs.
        std::vector<char*> envp, argv;
        for (string& e : env) envp.push_back(&e[0]);
        envp.push_back(nullptr);
        char* pid_digits = listener >= 0 ? envp[envp.size() - 2] + 11 : nullptr;
        string path_copy = path;
        std::vector<string> args_copy = args;
        argv.push_back(&path_copy[0]);
        for (string& a : args_copy) argv.push_back(&a[0]);
        argv.push_back(nullptr);
        int out[2], err[2];
        if (!graceful_http::detail::make_pipe(out, false)) return;
        if (!graceful_http::detail::make_pipe(err, false)) {
            ::close(out[0]);
            ::close(out[1]);
            return;
        }
        std::fflush(nullptr); // the child must not flush our buffered output again
        pid_ = fork();
        if (pid_ == 0) {
            ::dup2(out[1], 1);
            ::dup2(err[1], 2);
            if (listener >= 0) {
                if (listener == 3) ::fcntl(3, F_SETFD, 0);
                else if (::dup2(listener, 3) != 3) ::_exit(126);
                unsigned long v = static_cast<unsigned long>(::getpid());
                int n = 0;
                char tmp[16];
                do tmp[n++] = static_cast<char>('0' + v % 10); while ((v /= 10) != 0);
                for (int i = 0; i < n; ++i) pid_digits[i] = tmp[n - 1 - i];
                pid_digits[n] = '\0';
            }
            ::execve(argv[0], argv.data(), envp.data());
            ::_exit(127);
        }
        ::close(out[1]);
        ::close(err[1]);
        out_.fd = out[0];
        err_.fd = err[0];
    }
    ~Child() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            int st;
            ::waitpid(pid_, &st, 0);
        }
        for (int fd : {out_.fd, err_.fd})
            if (fd >= 0) ::close(fd);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const { return pid_; }
    void signal(int sig) {
        if (pid_ > 0 && !exited_) ::kill(pid_, sig);
    }

    // next_line returns the next line of stdout (or stderr), without its
    // newline; false if none came within `bound` (or the pipe ended).
    bool next_line(string& line, ms bound = slack(), bool from_stderr = false) {
        Stream& s = from_stderr ? err_ : out_;
        auto deadline = Clock::now() + bound;
        for (;;) {
            size_t nl = s.buf.find('\n');
            if (nl != string::npos) {
                line = s.buf.substr(0, nl);
                s.buf.erase(0, nl + 1);
                s.seen += line + "\n";
                return true;
            }
            auto left = std::chrono::duration_cast<ms>(deadline - Clock::now()).count();
            if (left <= 0 || s.fd < 0) return false;
            pollfd p{s.fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
            char buf[4096];
            ssize_t n = ::read(s.fd, buf, sizeof buf);
            if (n <= 0) return false;
            s.buf.append(buf, static_cast<size_t>(n));
        }
    }
    bool next_err_line(string& line, ms bound = slack()) { return next_line(line, bound, true); }
    // the listening port from the first stdout line, or 0
    int read_port(string* first_line = nullptr) {
        string line;
        if (!next_line(line)) return 0;
        if (first_line) *first_line = line;
        size_t colon = line.rfind(':');
        if (!starts_with(line, "listening on http://") || colon == string::npos) return 0;
        return std::atoi(line.c_str() + colon + 1);
    }
    // stderr_text: every stderr line read so far plus what is left (after exit).
    string stderr_text() {
        string line;
        while (next_err_line(line, exited_ ? ms(200) : ms(0))) {
        }
        return err_.seen + err_.buf;
    }

    // wait_exit: the exit code, 128+signal when killed, -1 on timeout.
    int wait_exit(ms bound = slack()) {
        if (exited_) return code_;
        auto deadline = Clock::now() + bound;
        for (;;) {
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                exited_ = true;
                code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                return code_;
            }
            if (Clock::now() > deadline) return -1;
            std::this_thread::sleep_for(ms(1));
        }
    }
    bool running() {
        if (exited_) return false;
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) != pid_) return true;
        exited_ = true;
        code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return false;
    }

private:
    struct Stream {
        int fd = -1;
        string buf, seen;
    };
    pid_t pid_ = -1;
    Stream out_, err_;
    bool exited_ = false;
    int code_ = -1;
};

// reap waits (bounded) for a process that is or will become our child
// (a re-parented successor) and returns its exit code, -1 on timeout.
int reap(pid_t pid, ms bound = slack()) {
    auto deadline = Clock::now() + bound;
    for (;;) {
        int st = 0;
        if (::waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (Clock::now() > deadline) return -1;
        std::this_thread::sleep_for(ms(1));
    }
}

// Subreaper makes this process the parent of orphaned descendants for
// its lifetime, so a handoff chain can be reaped and its exit codes read.
class Subreaper {
public:
    Subreaper() { // Linux only (these tests also read /proc); elsewhere ok() is false
#if defined(__linux__)
        int old = 0;
        ::prctl(PR_GET_CHILD_SUBREAPER, &old, 0, 0, 0);
        was_ = old != 0;
        ok_ = ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
#endif
    }
    ~Subreaper() {
#if defined(__linux__)
        if (!was_) ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
#endif
    }
    bool ok() const { return ok_; }

private:
    [[maybe_unused]] bool was_ = false;
    bool ok_ = false;
};

// demo_children lists this process's children named demo_server (started
// by this test, or re-parented to it as orphans of a handoff chain).
std::vector<pid_t> demo_children() {
    std::vector<pid_t> out;
    if (DIR* d = opendir("/proc")) {
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
            string path = string("/proc/") + e->d_name + "/stat";
            FILE* f = std::fopen(path.c_str(), "r");
            if (!f) continue;
            char buf[512];
            size_t n = std::fread(buf, 1, sizeof buf - 1, f);
            std::fclose(f);
            string stat(buf, n);
            size_t open = stat.find('('), close = stat.rfind(')');
            if (open == string::npos || close == string::npos) continue;
            string comm = stat.substr(open + 1, close - open - 1);
            long ppid = std::atol(stat.c_str() + close + 4); // ") S PPID"
            if (ppid == ::getpid() && starts_with(comm, "demo_server"))
                out.push_back(static_cast<pid_t>(std::atol(e->d_name)));
        }
        closedir(d);
    }
    return out;
}

// Descendants tracks the processes of a handoff chain (ours once
// orphaned). When the test ends early it kills and reaps whatever is
// left, including successors whose pid the test never learned.
struct Descendants {
    std::vector<pid_t> alive;
    ~Descendants() {
        for (pid_t p : alive) ::kill(p, SIGKILL);
        auto deadline = Clock::now() + ms(5000);
        for (;;) {
            std::vector<pid_t> left = alive, kids = demo_children();
            left.insert(left.end(), kids.begin(), kids.end());
            if (left.empty() || Clock::now() > deadline) break;
            for (pid_t p : left) {
                ::kill(p, SIGKILL); // only our own children or our chain
                int st;
                if (::waitpid(p, &st, WNOHANG) == p)
                    alive.erase(std::remove(alive.begin(), alive.end(), p), alive.end());
            }
            std::this_thread::sleep_for(ms(2));
        }
    }
    int reap_one(pid_t p, ms bound = slack()) {
        int code = reap(p, bound);
        if (code != -1) alive.erase(std::remove(alive.begin(), alive.end(), p), alive.end());
        return code;
    }
};

// ---- loopback sockets ----

// listening_socket binds and listens on 127.0.0.1:0 like a launcher
// (systemd) would; *port is the bound port.
int listening_socket(int* port) {
    int fd = graceful_http::detail::socket_cloexec(AF_INET, SOCK_STREAM, false);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd, 64) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        if (fd >= 0) ::close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

// holds_socket: process `pid` has a descriptor for the socket with this inode.
bool holds_socket(pid_t pid, ino_t inode) {
    string dir = "/proc/" + std::to_string(pid) + "/fd";
    string want = "socket:[" + std::to_string(inode) + "]";
    bool found = false;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d)) {
            char target[128];
            string link = dir + "/" + e->d_name;
            ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
            if (n > 0 && want == string(target, static_cast<size_t>(n))) found = true;
        }
        closedir(d);
    }
    return found;
}

// metric returns a sample's value from Prometheus text, or -1.
long metric(const string& text, const string& name) {
    size_t p = text.find("\n" + name + " ");
    return p == string::npos ? -1 : std::atol(text.c_str() + p + name.size() + 2);
}

// in_flight_at_least: the demo on `port` is handling at least n requests
// besides the /metrics request that asks.
bool in_flight_at_least(int port, long n) {
    return eventually([&] {
        support::Response r = support::get(port, "/metrics");
        return r.status == 200 && metric(r.body, "graceful_http_active_requests") >= n + 1;
    });
}

// send_get opens a connection and sends one GET (keep-alive) on it.
Client send_get(int port, const string& target) {
    Client c;
    if (c.connect(port)) c.send("GET " + target + " HTTP/1.1\r\nHost: test\r\n\r\n");
    return c;
}

// ---- a fake NOTIFY_SOCKET: what systemd's manager reads ----

// NotifySocket is an AF_UNIX datagram socket bound to a path or, for
// "@name", to an abstract address of exactly that length. SO_PASSCRED
// gives each datagram's sender pid, as systemd sees it.
class NotifySocket {
public:
    struct Msg {
        string text;
        pid_t pid = 0;
    };
    explicit NotifySocket(bool abstract) {
        static std::atomic<int> counter{0};
        fd_ = graceful_http::detail::socket_cloexec(AF_UNIX, SOCK_DGRAM, false);
#if defined(__linux__) // these tests run on Linux; elsewhere they only compile
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
#endif
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        socklen_t len;
        if (abstract) {
            name_ = "@graceful_http_ops_" + std::to_string(getpid()) + "_" +
                    std::to_string(counter++);
            std::memcpy(a.sun_path, name_.data(), name_.size());
            a.sun_path[0] = '\0';
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
        } else {
            char tmpl[] = "/tmp/graceful_http_ops_XXXXXX";
            if (::mkdtemp(tmpl) != nullptr) dir_ = tmpl;
            name_ = dir_ + "/notify";
            std::memcpy(a.sun_path, name_.data(), name_.size());
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size() + 1);
        }
        bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) == 0;
    }
    ~NotifySocket() {
        ::close(fd_);
        if (!dir_.empty()) {
            ::unlink(name_.c_str());
            ::rmdir(dir_.c_str());
        }
    }
    bool ok() const { return bound_; }
    string env() const { return "NOTIFY_SOCKET=" + name_; }

    // next returns the next datagram and its sender; false on timeout.
    bool next(Msg& m, ms bound = slack()) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(bound.count())) <= 0) return false;
        char buf[4096];
        iovec iov{buf, sizeof buf};
        msghdr h{};
        h.msg_iov = &iov;
        h.msg_iovlen = 1;
#if defined(__linux__)
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
        h.msg_control = control;
        h.msg_controllen = sizeof control;
#endif
        ssize_t n = ::recvmsg(fd_, &h, MSG_DONTWAIT);
        if (n < 0) return false;
        m.text.assign(buf, static_cast<size_t>(n));
        m.pid = 0;
#if defined(__linux__)
        // SO_PASSCRED's credentials are the only control message (and
        // musl's CMSG_NXTHDR trips -Wsign-compare): the first one is it.
        if (cmsghdr* c = CMSG_FIRSTHDR(&h))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                ucred cred;
                std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
                m.pid = cred.pid;
            }
#endif
        return true;
    }

private:
    int fd_ = -1;
    bool bound_ = false;
    string name_, dir_;
};

string join(const std::vector<NotifySocket::Msg>& ms_) {
    string s;
    for (const auto& m : ms_) s += "[" + std::to_string(m.pid) + "] " + m.text + "\n";
    return s;
}

} // namespace

// ==== Server groups (SHUTDOWN.md #16) ====

TEST_CASE("group: two servers with a 1 s request each drain in parallel on SIGTERM (~1 s, not 2)",
          "[ops]") {
    Server a, b;
    Gate arrived;
    // Each request is still in flight for 1 s after shutdown begins, so a
    // serial drain would take 2 s.
    auto slow = [&](const Request& req, Response& res) {
        arrived.arrive();
        req.wait_for_shutdown(slack());
        req.wait_for_cancel(ms(1000));
        res.text("done\n");
    };
    a.get("/slow", slow);
    b.get("/slow", slow);
    REQUIRE_FALSE(a.listen("127.0.0.1", 0));
    REQUIRE_FALSE(b.listen("127.0.0.1", 0));

    std::atomic<long> signalled_at_ms{-1};
    auto t0 = Clock::now();
    support::Response ra, rb;
    std::thread driver([&] {
        Client ca = send_get(a.port(), "/slow"), cb = send_get(b.port(), "/slow");
        if (arrived.wait_arrived(2)) signalled_at_ms = elapsed_ms(t0);
        ::kill(::getpid(), SIGTERM); // to the process, as a supervisor sends it
        ra = ca.read_response();
        rb = cb.read_response();
    });
    RunOptions opt;
    opt.grace = std::chrono::seconds(10);
    opt.notify = false;
    GroupReport g = graceful_http::run_until_signal({&a, &b}, opt);
    long returned_at_ms = elapsed_ms(t0);
    driver.join();

    REQUIRE(signalled_at_ms >= 0); // both requests reached their handlers
    long took = returned_at_ms - signalled_at_ms;
    INFO("run_until_signal returned " << took << " ms after SIGTERM");
    CHECK(took >= 900);
    CHECK(took < 1800);
    CHECK_FALSE(g.error);
    REQUIRE(g.reports.size() == 2);
    CHECK(g.reports[0].drained);
    CHECK(g.reports[1].drained);
    CHECK(g.drained());
    CHECK_FALSE(g.reloaded);
    for (const support::Response* r : {&ra, &rb}) {
        CHECK(r->outcome == Outcome::ok);
        CHECK(r->status == 200);
        CHECK(r->closes());
    }
}

TEST_CASE("group: a server that fails drains the others, and the report carries the error",
          "[ops]") {
    Server ok_srv, broken; // `broken` never listens: its serve() fails at once
    ok_srv.get("/", [](const Request&, Response& res) { res.text("hello\n"); });
    REQUIRE_FALSE(ok_srv.listen("127.0.0.1", 0));
    // A request already queued in the good server's backlog is still served
    // (before or after its drain began).
    Client c = send_get(ok_srv.port(), "/");
    RunOptions opt;
    opt.notify = false;
    auto t0 = Clock::now();
    GroupReport g = graceful_http::run_until_signal({&ok_srv, &broken}, opt);
    INFO("returned after " << elapsed_ms(t0) << " ms");
    CHECK(elapsed_ms(t0) < slack().count());
    REQUIRE(g.error);
    CHECK(g.error.message().find("not listening") != string::npos);
    CHECK_FALSE(g.drained());
    REQUIRE(g.reports.size() == 2);
    CHECK(g.reports[0].drained);
    CHECK(g.reports[0].completed);
    CHECK_FALSE(g.reports[1].drained);
    support::Response r = c.read_response();
    CHECK(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(ok_srv.listener_fd() == -1); // the drain closed it
}

TEST_CASE("group: examples/group serves both, drains both, and exits 1 naming a bind failure",
          "[ops]") {
    string path = example_path("group");
    if (::access(path.c_str(), X_OK) != 0)
        FAIL(path << " is missing: build it with `make " << path << "`");
    int busy_port = 0;
    int busy = listening_socket(&busy_port);
    REQUIRE(busy >= 0);
    string busy_addr = "127.0.0.1:" + std::to_string(busy_port);

    SECTION("both serve; SIGTERM drains both; exit 0") {
        Child g(path, {"0", "0"});
        string l1, l2;
        REQUIRE(g.next_line(l1));
        REQUIRE(g.next_line(l2));
        REQUIRE(starts_with(l1, "public listening on http://127.0.0.1:"));
        REQUIRE(starts_with(l2, "admin listening on http://127.0.0.1:"));
        int pub = std::atoi(l1.c_str() + l1.rfind(':') + 1);
        int admin = std::atoi(l2.c_str() + l2.rfind(':') + 1);
        CHECK(support::get(pub, "/").body == "hello, world\n");
        CHECK(support::get(admin, "/stats").body.find("requests_total 1\n") != string::npos);
        g.signal(SIGTERM);
        CHECK(g.wait_exit() == 0);
        CHECK(g.stderr_text().find("public drained=yes, admin drained=yes") != string::npos);
    }
    SECTION("the public port is busy") {
        Child g(path, {std::to_string(busy_port), "0"});
        CHECK(g.wait_exit() == 1);
        string err = g.stderr_text();
        INFO("stderr: " << err);
        CHECK(err == "group: listen " + busy_addr + ": bind: " + support::in_use_text() + "\n");
        string line;
        CHECK_FALSE(g.next_line(line, ms(100))); // never said it was listening
    }
    SECTION("the admin port is busy: the public server, already bound, never serves") {
        Child g(path, {"0", std::to_string(busy_port)});
        CHECK(g.wait_exit() == 1);
        string err = g.stderr_text();
        INFO("stderr: " << err);
        CHECK(err == "group: listen " + busy_addr + ": bind: " + support::in_use_text() + "\n");
    }
    ::close(busy);
}

// ==== Hooks and stats ====

TEST_CASE("hooks: on_conn_state sees fresh, active, idle, ..., closed in order; on_shutdown runs "
          "once; stats() counts",
          "[ops]") {
    Server srv;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::pair<std::uint64_t, ConnState>> seen;
    srv.on_conn_state([&](std::uint64_t id, ConnState s) {
        std::lock_guard<std::mutex> lk(mu);
        seen.emplace_back(id, s);
        cv.notify_all();
    });
    std::atomic<int> hooks{0};
    srv.on_shutdown([&] { ++hooks; });
    Gate hold;
    srv.get("/", [](const Request&, Response& res) { res.text("hello\n"); });
    srv.get("/hold", [&](const Request&, Response& res) {
        hold.arrive();
        hold.wait();
        res.text("held\n");
    });
    REQUIRE_FALSE(srv.listen("127.0.0.1", 0));
    {
        support::Running run(srv);
        Client c;
        REQUIRE(c.connect(srv.port()));
        for (int i = 0; i < 2; ++i) {
            REQUIRE(c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
            support::Response r = c.read_response();
            REQUIRE(r.status == 200);
            CHECK_FALSE(r.closes());
        }
        c.close();
        {
            std::unique_lock<std::mutex> lk(mu);
            REQUIRE(cv.wait_for(lk, slack(), [&] {
                return !seen.empty() && seen.back().second == ConnState::closed;
            }));
            std::vector<ConnState> states;
            for (auto& p : seen) {
                CHECK(p.first == seen[0].first); // one connection
                states.push_back(p.second);
            }
            CHECK(states == std::vector<ConnState>{ConnState::fresh, ConnState::active,
                                                   ConnState::idle, ConnState::active,
                                                   ConnState::idle, ConnState::closed});
        }

        Client h = send_get(srv.port(), "/hold");
        REQUIRE(hold.wait_arrived(1));
        // `closed` is reported just before the first connection is gone.
        CHECK(eventually([&] { return srv.stats().active_connections == 1; }));
        graceful_http::Stats s = srv.stats();
        CHECK(s.active_requests == 1);
        CHECK(s.connections_total == 2);
        CHECK(s.requests_total == 3);
        CHECK(srv.listener_fd() >= 0);

        // Three shutdowns from three threads and a close: the hook runs once.
        std::vector<std::thread> ts;
        for (int i = 0; i < 3; ++i) ts.emplace_back([&] { (void)srv.shutdown(slack()); });
        CHECK(eventually([&] { return srv.is_shutting_down(); }));
        hold.open();
        for (auto& t : ts) t.join();
        srv.close();
        support::Response r = h.read_response();
        CHECK(r.status == 200);
        CHECK(r.closes());
        REQUIRE(run.wait_done());
    }
    CHECK(hooks == 1);
    graceful_http::Stats s = srv.stats();
    CHECK(s.active_connections == 0);
    CHECK(s.active_requests == 0);
    CHECK(s.drain.served_with_close == 1);
    CHECK(srv.listener_fd() == -1);
}

// ==== Socket activation (SHUTDOWN.md #17) ====

TEST_CASE("activation: inherited_listeners() adopts LISTEN_FDS by name, sets CLOEXEC, unsets the "
          "variables",
          "[ops]") {
    int p1 = 0, p2 = 0;
    int s1 = listening_socket(&p1), s2 = listening_socket(&p2);
    REQUIRE(s1 >= 0);
    REQUIRE(s2 >= 0);
    // In a child, so that fds 3 and 4 and the environment are its own. The
    // exit code names the first check that failed.
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        if (::dup2(s1, 3) != 3 || ::dup2(s2, 4) != 4) ::_exit(10);
        ::setenv("LISTEN_FDS", "2", 1);
        ::setenv("LISTEN_FDNAMES", "http:admin", 1);
        ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
        auto ls = graceful_http::inherited_listeners();
        if (ls.size() != 2) ::_exit(11);
        if (ls[0].fd != 3 || ls[0].name != "http" || ls[1].fd != 4 || ls[1].name != "admin")
            ::_exit(12);
        if (!(::fcntl(3, F_GETFD) & FD_CLOEXEC) || !(::fcntl(4, F_GETFD) & FD_CLOEXEC)) ::_exit(13);
        for (const char* v : {"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"})
            if (std::getenv(v) != nullptr) ::_exit(14);
        if (!graceful_http::inherited_listeners().empty()) ::_exit(15); // taken once
        // Not ours (another LISTEN_PID): nothing adopted, variables unset all the same.
        ::setenv("LISTEN_FDS", "1", 1);
        ::setenv("LISTEN_PID", "1", 1);
        if (!graceful_http::inherited_listeners().empty()) ::_exit(16);
        if (std::getenv("LISTEN_FDS") != nullptr || std::getenv("LISTEN_PID") != nullptr) ::_exit(17);
        // The adopted socket serves through Server::listen_fd.
        Server srv;
        if (srv.listen_fd(3) || srv.port() != p1) ::_exit(18);
        ::_exit(0);
    }
    REQUIRE(pid > 0);
    int code = reap(pid);
    INFO("child exit code " << code << " (10+: the first failed check, see the test)");
    CHECK(code == 0);
    ::close(s1);
    ::close(s2);
}

TEST_CASE("activation: demo_server serves on a launcher's socket (fd 3); connections queued while "
          "it drains survive for the launcher",
          "[ops]") {
    int port = 0;
    int lfd = listening_socket(&port);
    REQUIRE(lfd >= 0);
    struct stat st {};
    REQUIRE(::fstat(lfd, &st) == 0);
    // --port is the launcher's own port: binding it would fail (exit 1),
    // so a `listening on` line proves the inherited socket is used.
    Child demo(GRACEFUL_HTTP_DEMO_PATH, {"--port", std::to_string(port)}, {}, lfd);
    string first;
    REQUIRE(demo.read_port(&first) == port);
    CHECK(first == "listening on http://127.0.0.1:" + std::to_string(port));
    CHECK(support::get(port, "/").body == "hello, world\n");

    Client sleeper = send_get(port, "/sleep?ms=3000");
    REQUIRE(in_flight_at_least(port, 1));
    demo.signal(SIGTERM);
    // The demo stops accepting and closes its descriptor; the launcher's
    // copy keeps the socket listening.
    REQUIRE(eventually([&] { return !holds_socket(demo.pid(), st.st_ino); }));
    std::vector<Client> queued(3);
    for (size_t i = 0; i < queued.size(); ++i) {
        REQUIRE(queued[i].connect(port)); // not refused
        REQUIRE(queued[i].send("GET /queued/" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    REQUIRE(demo.running()); // all of this happened during the drain
    for (Client& q : queued) { // nothing came back: no reset, no EOF
        pollfd p{q.fd(), POLLIN, 0};
        CHECK(::poll(&p, 1, 0) == 0);
    }
    support::Response slept = sleeper.read_response();
    CHECK(slept.status == 200);
    CHECK(slept.body == "slept 3000 ms\n");
    CHECK(demo.wait_exit() == 0);

    int accepting = 0;
    socklen_t len = sizeof accepting;
    REQUIRE(::getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0);
    CHECK(accepting == 1); // never shutdown(2)
    std::set<string> got;
    for (size_t i = 0; i < queued.size(); ++i) {
        pollfd p{lfd, POLLIN, 0};
        REQUIRE(::poll(&p, 1, static_cast<int>(slack().count())) == 1);
        int cfd = graceful_http::detail::accept_cloexec(lfd);
        REQUIRE(cfd >= 0);
        string req;
        char buf[1024];
        while (req.find("\r\n\r\n") == string::npos) {
            pollfd cp{cfd, POLLIN, 0};
            if (::poll(&cp, 1, static_cast<int>(slack().count())) != 1) break;
            ssize_t n = ::recv(cfd, buf, sizeof buf, 0);
            if (n <= 0) break;
            req.append(buf, static_cast<size_t>(n));
        }
        got.insert(req.substr(0, req.find("\r\n")));
        string resp = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nlauncher\n";
        CHECK(::send(cfd, resp.data(), resp.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(resp.size()));
        ::close(cfd);
    }
    CHECK(got == std::set<string>{"GET /queued/0 HTTP/1.1", "GET /queued/1 HTTP/1.1",
                                  "GET /queued/2 HTTP/1.1"});
    for (Client& q : queued) {
        support::Response r = q.read_response();
        CHECK(r.status == 200);
        CHECK(r.body == "launcher\n");
    }
    ::close(lfd);
}

// ==== sd_notify (SHUTDOWN.md #18) ====

TEST_CASE("sd_notify: a path NOTIFY_SOCKET gets READY=1, then STOPPING=1, then "
          "EXTEND_TIMEOUT_USEC during a drain longer than 1 s",
          "[ops]") {
    NotifySocket ns(false);
    REQUIRE(ns.ok());
    Child demo(GRACEFUL_HTTP_DEMO_PATH, {"--port", "0"}, {ns.env()});
    int port = demo.read_port();
    REQUIRE(port > 0);
    std::vector<NotifySocket::Msg> got;
    NotifySocket::Msg m;
    REQUIRE(ns.next(m));
    got.push_back(m);
    Client sleeper = send_get(port, "/sleep?ms=3000");
    REQUIRE(in_flight_at_least(port, 1));
    auto t_sig = Clock::now();
    demo.signal(SIGTERM);
    CHECK(sleeper.read_response().status == 200);
    CHECK(demo.wait_exit() == 0);
    long drain_ms = elapsed_ms(t_sig);
    while (ns.next(m, ms(200))) got.push_back(m);

    INFO("datagrams:\n" << join(got) << "drain took about " << drain_ms << " ms");
    REQUIRE(got.size() >= 2);
    CHECK(got[0].text == "READY=1");
    CHECK(got[1].text == "STOPPING=1");
    for (size_t i = 2; i < got.size(); ++i) CHECK(got[i].text == "EXTEND_TIMEOUT_USEC=3000000");
    if (drain_ms >= 1500) CHECK(got.size() >= 3); // one extension per second of drain
    for (const auto& g : got) CHECK(g.pid == demo.pid()); // as systemd's NotifyAccess=main checks
}

TEST_CASE("sd_notify: an abstract @name NOTIFY_SOCKET gets READY=1, WATCHDOG=1 every "
          "WATCHDOG_USEC/2, then STOPPING=1",
          "[ops]") {
    NotifySocket ns(true);
    REQUIRE(ns.ok());
    Child demo(GRACEFUL_HTTP_DEMO_PATH, {"--port", "0"}, {ns.env(), "WATCHDOG_USEC=200000"});
    REQUIRE(demo.read_port() > 0);
    std::vector<NotifySocket::Msg> got;
    NotifySocket::Msg m;
    int pings = 0;
    while (pings < 3 && ns.next(m)) { // three pings, ~100 ms apart
        got.push_back(m);
        pings += m.text == "WATCHDOG=1";
    }
    REQUIRE(pings == 3);
    demo.signal(SIGTERM);
    CHECK(demo.wait_exit() == 0);
    while (ns.next(m, ms(200))) got.push_back(m);

    INFO("datagrams:\n" << join(got));
    REQUIRE(!got.empty());
    CHECK(got[0].text == "READY=1");
    size_t stopping = 0;
    for (size_t i = 1; i < got.size(); ++i) {
        if (got[i].text == "STOPPING=1") ++stopping;
        else CHECK((got[i].text == "WATCHDOG=1" || got[i].text == "EXTEND_TIMEOUT_USEC=3000000"));
        CHECK(got[i].pid == demo.pid());
    }
    CHECK(stopping == 1);
}

// A handoff under systemd: Type=notify, NotifyAccess=main. The old process
// announces MAINPID=<successor> once the successor is ready; from then on
// systemd ignores the old process, whose STOPPING=1 would otherwise stop
// the whole service (it would SIGTERM the successor too).
TEST_CASE("sd_notify: a SIGHUP handoff moves MAINPID to the successor, and no STOPPING=1 reaches "
          "a NotifyAccess=main manager until the service really stops",
          "[ops]") {
    Subreaper subreaper;
    REQUIRE(subreaper.ok());
    Descendants chain;
    NotifySocket ns(false);
    REQUIRE(ns.ok());
    Child old(GRACEFUL_HTTP_DEMO_PATH, {"--port", "0"}, {ns.env()});
    int port = old.read_port();
    REQUIRE(port > 0);

    // What systemd does with each datagram under NotifyAccess=main.
    pid_t main_pid = old.pid();
    bool ready = false, stopping = false;
    std::vector<NotifySocket::Msg> got;
    auto manager_reads = [&](ms bound) {
        NotifySocket::Msg m;
        if (!ns.next(m, bound)) return false;
        got.push_back(m);
        if (m.pid != main_pid) return true; // "reception only permitted for main PID"
        if (starts_with(m.text, "MAINPID=")) main_pid = std::atoi(m.text.c_str() + 8);
        if (m.text == "READY=1") ready = true;
        if (m.text == "STOPPING=1") stopping = true;
        return true;
    };
    REQUIRE(manager_reads(slack()));
    REQUIRE(ready);

    Client sleeper = send_get(port, "/sleep?ms=1500"); // the old process has work to drain
    REQUIRE(in_flight_at_least(port, 1));
    old.signal(SIGHUP);
    string line;
    REQUIRE(old.next_err_line(line));
    std::smatch sm;
    REQUIRE(std::regex_match(line, sm, std::regex(R"(demo_server: reload: pid (\d+) is ready, draining)")));
    pid_t successor = std::stoi(sm[1]);
    chain.alive.push_back(successor);
    REQUIRE(old.next_line(line));
    CHECK(line == "listening on http://127.0.0.1:" + std::to_string(port));

    CHECK(sleeper.read_response().status == 200); // the old process finishes its work
    CHECK(old.wait_exit() == 0);
    while (manager_reads(ms(200))) {
    }
    INFO("datagrams:\n" << join(got));
    CHECK(main_pid == successor);
    CHECK_FALSE(stopping); // the service was never told it is stopping
    CHECK(support::get(port, "/").body == "hello, world\n"); // the successor serves

    ::kill(successor, SIGTERM);
    CHECK(chain.reap_one(successor) == 0);
    while (manager_reads(ms(200))) {
    }
    CHECK(stopping); // now it is, from the main process
}

// ==== Re-exec handoff under load (SHUTDOWN.md #19) ====

namespace {

// Load counts what clients saw. refused and ambiguous must stay 0.
struct Load {
    std::atomic<long> ok{0}, refused{0}, ambiguous{0}, bad{0};
    std::atomic<long> reconnect_after_close{0}; // a response said Connection: close
    std::atomic<long> stale{0}; // found closed by the server before sending (safe)
    std::atomic<bool> stop{false};
    Clock::time_point t0 = Clock::now();
    string problems; // the first few failures, with timings, for the report
    std::mutex mu;
    void note(const string& what) {
        std::lock_guard<std::mutex> lk(mu);
        if (problems.size() < 4000)
            problems += "at " + std::to_string(elapsed_ms(t0)) + " ms: " + what + "\n";
    }
};

// check_response counts one response (or its absence) after the request
// was sent; `context` says how the request came to be sent.
bool check_response(Load& load, const support::Response& r, const string& context) {
    if (r.outcome == Outcome::ok && r.status == 200 && r.body == "hello, world\n") {
        ++load.ok;
        return true;
    }
    if (r.outcome == Outcome::ok) {
        ++load.bad;
        load.note(context + ": status " + std::to_string(r.status));
    } else {
        ++load.ambiguous; // the request was sent; no response
        load.note(context + ": " + support::outcome_name(r.outcome) + " after sending");
    }
    return false;
}

// closed_by_peer: the server has closed this idle connection (FIN or
// reset seen) -- a careful client checks before reusing it, as Go's
// transport and curl do; nothing has been sent, so reconnecting is safe.
bool closed_by_peer(const Client& c) {
#if defined(POLLRDHUP)
    pollfd p{c.fd(), POLLIN | POLLRDHUP, 0};
#else
    pollfd p{c.fd(), POLLIN, 0}; // (compile checks only: these tests run on Linux)
#endif
    return ::poll(&p, 1, 0) == 1;
}

// A new connection per request.
void churn_client(Load& load, int port) {
    while (!load.stop) {
        Client c;
        auto t_connect = Clock::now();
        if (!c.connect(port)) {
            ++load.refused;
            load.note("churn: connect refused");
            continue;
        }
        if (closed_by_peer(c)) { // a drain closed it silent before we sent (safe)
            ++load.stale;
            continue;
        }
        string context = "churn (send " + std::to_string(elapsed_ms(t_connect)) + " ms after connect)";
        if (!c.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")) {
            ++load.ambiguous;
            load.note(context + ": send failed");
            continue;
        }
        check_response(load, c.read_response(), context);
    }
}

// One keep-alive connection, reused until the server says
// Connection: close (then reconnect: a legitimate close, not a failure).
void keepalive_client(Load& load, int port) {
    Client c;
    int uses = 0;
    auto t_last = Clock::now(); // connect or last response
    while (!load.stop) {
        if (c.connected() && closed_by_peer(c)) {
            ++load.stale;
            c.close();
        }
        if (!c.connected()) {
            if (!c.connect(port)) {
                ++load.refused;
                load.note("keep-alive: connect refused");
                continue;
            }
            uses = 0;
            t_last = Clock::now();
        }
        string context = "keep-alive (request " + std::to_string(++uses) + " on the connection, " +
                         std::to_string(elapsed_ms(t_last)) + " ms after the last event)";
        if (!c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")) {
            ++load.ambiguous;
            load.note(context + ": send failed");
            c.close();
            continue;
        }
        support::Response r = c.read_response();
        t_last = Clock::now();
        if (!check_response(load, r, context) || r.closes()) {
            if (r.outcome == Outcome::ok) ++load.reconnect_after_close;
            c.close();
        }
    }
}

} // namespace

TEST_CASE("handoff: 20 SIGHUP re-exec handoffs of demo_server under continuous load: 0 refused, "
          "0 ambiguous",
          "[ops]") {
    // The drain delay is what makes keep-alive clients safe: every response
    // the old process writes after the handoff says Connection: close, so
    // it closes a busy keep-alive connection only right after a response.
    // Without it, an idle keep-alive connection is closed at once, and a
    // client whose next request is already on the wire sees EOF with no
    // response (HTTP/1.1's residue, SHUTDOWN.md #21).
    const int kHandoffs = 20;
    Subreaper subreaper;
    REQUIRE(subreaper.ok());
    Descendants chain;
    Child first(GRACEFUL_HTTP_DEMO_PATH,
                {"--port", "0", "--drain-delay-ms", "500", "--grace-ms", "10000"});
    int port = first.read_port();
    REQUIRE(port > 0);
    const string url_line = "listening on http://127.0.0.1:" + std::to_string(port);

    Load load;
    std::vector<std::thread> clients;
    for (int i = 0; i < 2; ++i) clients.emplace_back(churn_client, std::ref(load), port);
    for (int i = 0; i < 2; ++i) clients.emplace_back(keepalive_client, std::ref(load), port);
    struct Stop {
        Load& l;
        std::vector<std::thread>& ts;
        ~Stop() {
            l.stop = true;
            for (auto& t : ts)
                if (t.joinable()) t.join();
        }
    } stop_clients{load, clients};

    // Each generation: serve some load, SIGHUP, wait until the successor is
    // ready, then until the old process has drained and exited -- all of
    // it under load -- then the next.
    std::vector<pid_t> pids{first.pid()};
    std::vector<int> codes;
    std::vector<string> summaries;
    string events; // ms since the load started
    auto read_stderr_until_ready = [&](pid_t& next) {
        string line;
        std::smatch sm;
        const std::regex ready(R"(demo_server: reload: pid (\d+) is ready, draining)");
        while (next == 0 && first.next_err_line(line)) {
            if (std::regex_match(line, sm, ready)) next = std::stoi(sm[1]);
            else if (starts_with(line, "demo_server: shutdown ")) summaries.push_back(line);
            else FAIL_CHECK("unexpected stderr line: " << line);
        }
    };
    auto t0 = Clock::now();
    for (int i = 0; i < kHandoffs; ++i) {
        INFO("handoff " << i + 1);
        long before = load.ok;
        REQUIRE(eventually([&] { return load.ok >= before + 20; })); // the current one serves
        pid_t old = pids.back(), next = 0;
        events += "SIGHUP " + std::to_string(old) + " at " + std::to_string(elapsed_ms(load.t0));
        ::kill(old, SIGHUP);
        read_stderr_until_ready(next);
        events += ", ready " + std::to_string(elapsed_ms(load.t0));
        REQUIRE(next > 0);
        chain.alive.push_back(next);
        pids.push_back(next);
        string line;
        REQUIRE(first.next_line(line));
        CHECK(line == url_line);
        codes.push_back(i == 0 ? first.wait_exit() : chain.reap_one(old));
        REQUIRE(codes.back() != -1);
        events += ", exited " + std::to_string(elapsed_ms(load.t0)) + "\n";
    }
    long handoff_ms = elapsed_ms(t0);
    long before = load.ok;
    REQUIRE(eventually([&] { return load.ok >= before + 20; })); // the last one serves
    load.stop = true;
    for (auto& t : clients) t.join();

    ::kill(pids.back(), SIGTERM);
    codes.push_back(chain.reap_one(pids.back()));
    string line;
    while (first.next_err_line(line, ms(500)))
        if (starts_with(line, "demo_server: shutdown ")) summaries.push_back(line);

    std::printf("handoff: %d re-exec handoffs in %ld ms under load: ok=%ld refused=%ld "
                "ambiguous=%ld bad_status=%ld reconnect_after_close=%ld stale_idle=%ld\n",
                kHandoffs, handoff_ms, load.ok.load(), load.refused.load(), load.ambiguous.load(),
                load.bad.load(), load.reconnect_after_close.load(), load.stale.load());
    std::fflush(stdout);
    string unusual; // generations whose drain closed an idle or silent connection
    for (const string& sm : summaries)
        if (sm.find(" idle_closed=0 silent_closed=0") == string::npos) unusual += sm + "\n";
    INFO("problems (ms since the load started):\n" << load.problems << "drains that closed idle or silent connections:\n" << unusual << "handoffs:\n" << events);
    CHECK(load.refused == 0);
    CHECK(load.ambiguous == 0);
    CHECK(load.bad == 0);
    CHECK(load.ok > 0);
    CHECK(codes == std::vector<int>(pids.size(), 0)); // every generation drained and exited 0
    CHECK(summaries.size() == pids.size());
    for (const string& s : summaries) CHECK(s.find("drained=yes") != string::npos);
}

TEST_CASE("handoff: a successor that fails to start leaves the old process serving", "[ops]") {
    // The binary vanishes between start and SIGHUP (a broken deploy): the
    // exec fails, start_successor reports it, the old one keeps serving.
    char dir[] = "/tmp/graceful_http_ops_XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    string copy = string(dir) + "/demo_server";
    std::error_code ec;
    std::filesystem::copy_file(GRACEFUL_HTTP_DEMO_PATH, copy, ec); // contents and mode
    REQUIRE_FALSE(ec);
    Child demo(copy, {"--port", "0"});
    int port = demo.read_port();
    REQUIRE(port > 0);
    ::unlink(copy.c_str());
    ::rmdir(dir);
    auto t0 = Clock::now();
    demo.signal(SIGHUP);
    string line;
    REQUIRE(demo.next_err_line(line));
    CHECK(starts_with(line, "demo_server: reload failed, still serving: start_successor: "));
    CHECK(elapsed_ms(t0) < slack().count()); // an early exit is noticed at once, not after 10 s
    CHECK(support::get(port, "/").body == "hello, world\n");
    CHECK(demo.running());
    demo.signal(SIGTERM);
    CHECK(demo.wait_exit() == 0);
}

// demo-server.md: "A second SIGTERM or SIGINT during the drain forces the
// close". After a SIGHUP handoff the old process drains; a SIGTERM then
// (systemd's `stop` with KillMode=control-group signals every process of
// the service, a predecessor still draining included) is the first
// SIGTERM, so it must let the work in flight finish.
TEST_CASE("handoff: the first SIGTERM during a handoff drain does not force it; a second one does",
          "[ops]") {
    Subreaper subreaper;
    REQUIRE(subreaper.ok());
    Descendants chain;
    Child old(GRACEFUL_HTTP_DEMO_PATH, {"--port", "0", "--grace-ms", "20000"});
    int port = old.read_port();
    REQUIRE(port > 0);
    Client sleeper = send_get(port, "/sleep?ms=2000");
    REQUIRE(in_flight_at_least(port, 1));
    old.signal(SIGHUP);
    string line;
    REQUIRE(old.next_err_line(line));
    std::smatch sm;
    REQUIRE(std::regex_match(line, sm, std::regex(R"(demo_server: reload: pid (\d+) is ready, draining)")));
    pid_t successor = std::stoi(sm[1]);
    chain.alive.push_back(successor);

    old.signal(SIGTERM); // the first SIGTERM: the drain goes on
    support::Response r = sleeper.read_response();
    CHECK(r.outcome == Outcome::ok);
    CHECK(r.status == 200);
    CHECK(old.wait_exit() == 0);
    CHECK(support::get(port, "/").body == "hello, world\n"); // the successor is unharmed

    // A second stop signal does force (SIGTERM then SIGINT: two different
    // signals are both delivered, two SIGTERMs sent at once may merge).
    Client sleeper2 = send_get(port, "/sleep?ms=20000");
    REQUIRE(in_flight_at_least(port, 1));
    ::kill(successor, SIGHUP);
    pid_t third = 0;
    while (third == 0 && old.next_err_line(line))
        if (std::regex_match(line, sm, std::regex(R"(demo_server: reload: pid (\d+) is ready, draining)")))
            third = std::stoi(sm[1]);
    REQUIRE(third > 0);
    chain.alive.push_back(third);
    ::kill(successor, SIGTERM);
    ::kill(successor, SIGINT);
    CHECK(chain.reap_one(successor) == 3);
    CHECK(sleeper2.read_response().outcome != Outcome::ok);
    ::kill(third, SIGTERM);
    CHECK(chain.reap_one(third) == 0);
}
