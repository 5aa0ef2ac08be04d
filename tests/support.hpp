// Test support: a raw-socket HTTP client, a server-on-a-thread guard, a
// demo_server process runner, fd/thread counters and a gate for holding
// handlers. Everything talks to real sockets on loopback.
#pragma once

#include "../graceful_http.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <mutex>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <string>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#ifndef GRACEFUL_HTTP_DEMO_PATH
#define GRACEFUL_HTTP_DEMO_PATH "build/examples/demo_server"
#endif

namespace support {

using Clock = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

// Generous bound for anything that should happen "promptly": tests must
// pass on a loaded 2-core machine under TSan.
inline ms slack() { return ms(10000); }

// The C library's text for EADDRINUSE, as the library's errors carry it
// (glibc: "Address already in use"; musl: "Address in use").
inline std::string in_use_text() { return std::system_category().message(EADDRINUSE); }

inline long elapsed_ms(Clock::time_point since) {
    return static_cast<long>(
        std::chrono::duration_cast<ms>(Clock::now() - since).count());
}

// ---- counting fds and threads of this process ----
inline int count_dir(const char* path) {
    int n = 0;
    if (DIR* d = opendir(path)) {
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.') ++n;
        closedir(d);
    }
    return n;
}
inline int count_fds() { return count_dir("/proc/self/fd") - 1; } // minus opendir's own
// count_threads counts this process's threads that are not exiting: a
// thread joined a moment ago may still be listed in /proc/self/task
// (pthread_join returns when the kernel clears its tid, before the task
// is released), but its stat flags then carry PF_EXITING.
inline int count_threads() {
    constexpr unsigned long kPfExiting = 0x4; // include/linux/sched.h
    int n = 0;
    if (DIR* d = opendir("/proc/self/task")) {
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::string path = std::string("/proc/self/task/") + e->d_name + "/stat";
            unsigned long flags = 0;
            if (FILE* f = std::fopen(path.c_str(), "r")) {
                char buf[512];
                std::size_t len = std::fread(buf, 1, sizeof buf - 1, f);
                std::fclose(f);
                buf[len] = '\0';
                // after "pid (comm) ": state ppid pgrp session tty_nr tpgid flags
                if (const char* p = std::strrchr(buf, ')'))
                    std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags);
            } else {
                continue; // gone already
            }
            if ((flags & kPfExiting) == 0) ++n;
        }
        closedir(d);
    }
    return n;
}

// Whether this machine has an IPv6 loopback (::1) to bind: IPv6 tests
// are skipped, with a warning, where it has none.
inline bool have_ipv6_loopback() {
    int fd = graceful_http::detail::socket_cloexec(AF_INET6, SOCK_STREAM, false);
    if (fd < 0) return false;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// Waits (bounded) until pred() holds; returns pred(). For conditions the
// library publishes only through /proc (thread exit), never as a sleep
// in place of synchronisation on the thing under test.
template <class Pred>
bool eventually(Pred pred, ms bound = slack()) {
    auto end = Clock::now() + bound;
    while (!pred()) {
        if (Clock::now() > end) return false;
        std::this_thread::sleep_for(ms(2));
    }
    return true;
}

// ---- a gate: handlers block on it until the test opens it ----
class Gate {
public:
    void open() {
        std::lock_guard<std::mutex> lk(mu_);
        open_ = true;
        cv_.notify_all();
    }
    bool wait(ms bound = slack()) {
        std::unique_lock<std::mutex> lk(mu_);
        return cv_.wait_for(lk, bound, [&] { return open_; });
    }
    // arrivals: count how many handlers reached the gate
    void arrive() {
        std::lock_guard<std::mutex> lk(mu_);
        ++arrived_;
        cv_.notify_all();
    }
    bool wait_arrived(int n, ms bound = slack()) {
        std::unique_lock<std::mutex> lk(mu_);
        return cv_.wait_for(lk, bound, [&] { return arrived_ >= n; });
    }
    int arrived() {
        std::lock_guard<std::mutex> lk(mu_);
        return arrived_;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool open_ = false;
    int arrived_ = 0;
};

// ---- a raw HTTP client over one TCP connection ----
enum class Outcome {
    ok,        // a complete response was read
    refused,   // connect failed: safe to retry
    eof,       // request sent, then EOF before a complete response
    reset,     // request sent, then ECONNRESET
    timeout,   // nothing complete within the bound
};

inline const char* outcome_name(Outcome o) {
    switch (o) {
    case Outcome::ok: return "ok";
    case Outcome::refused: return "refused";
    case Outcome::eof: return "eof";
    case Outcome::reset: return "reset";
    case Outcome::timeout: return "timeout";
    }
    return "?";
}

struct Response {
    Outcome outcome = Outcome::timeout;
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    bool chunked = false;
    std::string raw_head;

    std::string header(const std::string& name) const {
        for (auto& h : headers)
            if (strcasecmp(h.first.c_str(), name.c_str()) == 0) return h.second;
        return "";
    }
    bool has_header(const std::string& name) const {
        for (auto& h : headers)
            if (strcasecmp(h.first.c_str(), name.c_str()) == 0) return true;
        return false;
    }
    bool closes() const {
        std::string c = header("Connection");
        for (auto& ch : c) ch = static_cast<char>(tolower(ch));
        return c.find("close") != std::string::npos;
    }
};

class Client {
public:
    Client() = default;
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    Client(Client&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)) { o.fd_ = -1; }
    ~Client() { close(); }

    // connect to 127.0.0.1:port (or host). Returns false if refused.
    bool connect(int port, const char* host = "127.0.0.1") {
        close();
        bool v6 = std::strchr(host, ':') != nullptr;
        fd_ = graceful_http::detail::socket_cloexec(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, false);
        if (fd_ < 0) return false;
        int rc;
        if (v6) {
            sockaddr_in6 a{};
            a.sin6_family = AF_INET6;
            a.sin6_port = htons(static_cast<uint16_t>(port));
            inet_pton(AF_INET6, host, &a.sin6_addr);
            rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        } else {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(static_cast<uint16_t>(port));
            inet_pton(AF_INET, host, &a.sin_addr);
            rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        }
        if (rc != 0) {
            close();
            return false;
        }
        return true;
    }
    bool connected() const { return fd_ >= 0; }
    int fd() const { return fd_; }

    bool send(const std::string& data) {
        size_t off = 0;
        while (off < data.size()) {
            ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return false;
            off += static_cast<size_t>(n);
        }
        return true;
    }

    // read_response reads one complete response (Content-Length, chunked,
    // or until EOF when neither). head_only: for HEAD requests.
    Response read_response(ms bound = slack(), bool head_only = false) {
        Response r;
        auto deadline = Clock::now() + bound;
        size_t head_end;
        while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
            Outcome o = fill(deadline);
            if (o != Outcome::ok) {
                r.outcome = o;
                return r;
            }
        }
        r.raw_head = buf_.substr(0, head_end + 4);
        parse_head(r);
        buf_.erase(0, head_end + 4);
        bool no_body = head_only || r.status == 204 || r.status == 304 ||
                       (r.status >= 100 && r.status < 200);
        if (no_body) {
            r.outcome = Outcome::ok;
            return r;
        }
        std::string te = r.header("Transfer-Encoding");
        if (!te.empty()) {
            r.chunked = true;
            return read_chunked(r, deadline);
        }
        if (r.has_header("Content-Length")) {
            size_t len = std::strtoull(r.header("Content-Length").c_str(), nullptr, 10);
            while (buf_.size() < len) {
                Outcome o = fill(deadline);
                if (o != Outcome::ok) {
                    r.outcome = o;
                    return r;
                }
            }
            r.body = buf_.substr(0, len);
            buf_.erase(0, len);
            r.outcome = Outcome::ok;
            return r;
        }
        for (;;) { // close-delimited
            Outcome o = fill(deadline);
            if (o == Outcome::eof) break;
            if (o != Outcome::ok) {
                r.outcome = o;
                return r;
            }
        }
        r.body = buf_;
        buf_.clear();
        r.outcome = Outcome::ok;
        return r;
    }

    // wait_eof: true when the server closes (EOF or reset) within bound
    // and nothing else arrives. Reports what came instead in `extra`.
    bool wait_closed(ms bound = slack(), std::string* extra = nullptr) {
        auto deadline = Clock::now() + bound;
        for (;;) {
            Outcome o = fill(deadline);
            if (o == Outcome::eof || o == Outcome::reset) break;
            if (o == Outcome::timeout) return false;
        }
        if (extra) *extra = buf_;
        return buf_.empty();
    }
    // true if the close was a reset rather than a clean FIN
    bool last_was_reset() const { return last_reset_; }

    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        buf_.clear();
    }
    // abort: close with RST (SO_LINGER 0)
    void abort() {
        if (fd_ < 0) return;
        linger l{1, 0};
        setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close();
    }
    std::string& buffer() { return buf_; }

    Outcome fill(Clock::time_point deadline) {
        for (;;) {
            auto left = std::chrono::duration_cast<ms>(deadline - Clock::now()).count();
            if (left <= 0) return Outcome::timeout;
            pollfd p{fd_, POLLIN, 0};
            int pr = ::poll(&p, 1, static_cast<int>(left));
            if (pr == 0) return Outcome::timeout;
            if (pr < 0) {
                if (errno == EINTR) continue;
                return Outcome::reset;
            }
            char tmp[16384];
            ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
            if (n > 0) {
                buf_.append(tmp, static_cast<size_t>(n));
                return Outcome::ok;
            }
            if (n == 0) {
                last_reset_ = false;
                return Outcome::eof;
            }
            if (errno == EINTR || errno == EAGAIN) continue;
            last_reset_ = (errno == ECONNRESET);
            return errno == ECONNRESET ? Outcome::reset : Outcome::eof;
        }
    }

private:
    void parse_head(Response& r) {
        const std::string& h = r.raw_head;
        size_t sp = h.find(' ');
        r.status = std::atoi(h.c_str() + sp + 1);
        size_t pos = h.find("\r\n") + 2;
        while (pos < h.size()) {
            size_t end = h.find("\r\n", pos);
            if (end == pos || end == std::string::npos) break;
            std::string line = h.substr(pos, end - pos);
            size_t colon = line.find(':');
            std::string name = line.substr(0, colon);
            size_t v = colon + 1;
            while (v < line.size() && line[v] == ' ') ++v;
            r.headers.emplace_back(name, line.substr(v));
            pos = end + 2;
        }
    }
    Response read_chunked(Response& r, Clock::time_point deadline) {
        for (;;) {
            size_t eol;
            while ((eol = buf_.find("\r\n")) == std::string::npos) {
                Outcome o = fill(deadline);
                if (o != Outcome::ok) {
                    r.outcome = o;
                    return r;
                }
            }
            size_t len = std::strtoull(buf_.c_str(), nullptr, 16);
            if (len == 0) {
                size_t end;
                while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
                    Outcome o = fill(deadline);
                    if (o != Outcome::ok) {
                        r.outcome = o;
                        return r;
                    }
                }
                buf_.erase(0, end + 4);
                r.outcome = Outcome::ok;
                return r;
            }
            while (buf_.size() < eol + 2 + len + 2) {
                Outcome o = fill(deadline);
                if (o != Outcome::ok) {
                    r.outcome = o;
                    return r;
                }
            }
            r.body.append(buf_, eol + 2, len);
            buf_.erase(0, eol + 2 + len + 2);
        }
    }

    int fd_ = -1;
    std::string buf_;
    bool last_reset_ = false;
};

// One request on a fresh connection. `extra_headers` end with \r\n each.
inline Response request(int port, const std::string& method, const std::string& path,
                        const std::string& body = "", const std::string& extra_headers = "",
                        ms bound = slack()) {
    Client c;
    if (!c.connect(port)) {
        Response r;
        r.outcome = Outcome::refused;
        return r;
    }
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: test\r\n" + extra_headers;
    if (!body.empty() || method == "POST" || method == "PUT")
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "Connection: close\r\n\r\n" + body;
    if (!c.send(req)) {
        Response r;
        r.outcome = Outcome::reset;
        return r;
    }
    return c.read_response(bound, method == "HEAD");
}

inline Response get(int port, const std::string& path) { return request(port, "GET", path); }

// ---- a Server running serve() on its own thread ----
class Running {
public:
    explicit Running(graceful_http::Server& s) : srv_(s) {
        thread_ = std::thread([this] {
            graceful_http::Error e = srv_.serve();
            std::lock_guard<std::mutex> lk(mu_);
            err_ = e;
            done_ = true;
            cv_.notify_all();
        });
    }
    ~Running() {
        if (thread_.joinable()) {
            if (!wait_done(ms(0))) (void)srv_.shutdown(ms(0));
            thread_.join();
        }
    }
    bool wait_done(ms bound = slack()) {
        std::unique_lock<std::mutex> lk(mu_);
        return cv_.wait_for(lk, bound, [&] { return done_; });
    }
    bool done() {
        std::lock_guard<std::mutex> lk(mu_);
        return done_;
    }
    graceful_http::Error error() {
        std::lock_guard<std::mutex> lk(mu_);
        return err_;
    }
    void join() {
        if (thread_.joinable()) thread_.join();
    }

private:
    graceful_http::Server& srv_;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    graceful_http::Error err_;
};

// ---- demo_server as a child process ----
class Demo {
public:
    // Starts demo_server with args; waits for its `listening on` line.
    explicit Demo(std::vector<std::string> args) {
        int out[2], err[2];
        if (!graceful_http::detail::make_pipe(out, false) ||
            !graceful_http::detail::make_pipe(err, false))
            return;
        pid_ = fork();
        if (pid_ == 0) {
            dup2(out[1], 1);
            dup2(err[1], 2);
            std::vector<char*> argv;
            static std::string path = GRACEFUL_HTTP_DEMO_PATH;
            argv.push_back(const_cast<char*>(path.c_str()));
            for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            execv(path.c_str(), argv.data());
            _exit(127);
        }
        ::close(out[1]);
        ::close(err[1]);
        out_ = out[0];
        err_ = err[0];
        // read the first stdout line (bounded)
        auto deadline = Clock::now() + slack();
        std::string line;
        while (line.find('\n') == std::string::npos && Clock::now() < deadline) {
            pollfd p{out_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char c[256];
            ssize_t n = ::read(out_, c, sizeof c);
            if (n <= 0) break;
            line.append(c, static_cast<size_t>(n));
        }
        first_line_ = line.substr(0, line.find('\n'));
        size_t colon = first_line_.rfind(':');
        if (first_line_.rfind("listening on http://", 0) == 0 && colon != std::string::npos)
            port_ = std::atoi(first_line_.c_str() + colon + 1);
    }
    ~Demo() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            int st;
            waitpid(pid_, &st, 0);
        }
        if (out_ >= 0) ::close(out_);
        if (err_ >= 0) ::close(err_);
    }
    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    const std::string& first_line() const { return first_line_; }
    void signal(int sig) { ::kill(pid_, sig); }

    // wait_exit: exit code, or -1 on timeout, or 128+sig when killed.
    int wait_exit(ms bound = slack()) {
        auto deadline = Clock::now() + bound;
        for (;;) {
            int st = 0;
            pid_t r = waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                exited_ = true;
                exit_time_ = Clock::now();
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            }
            if (Clock::now() > deadline) {
                exit_time_ = Clock::now(); // so a caller printing it sees "now", not garbage
                return -1;
            }
            std::this_thread::sleep_for(ms(1));
        }
    }
    Clock::time_point exit_time() const { return exit_time_; }
    // stderr_text: everything the process wrote to stderr so far (call
    // after exit to get it all).
    std::string stderr_text() {
        std::string s;
        char c[4096];
        for (;;) {
            pollfd p{err_, POLLIN, 0};
            if (::poll(&p, 1, exited_ ? 200 : 0) <= 0) break;
            ssize_t n = ::read(err_, c, sizeof c);
            if (n <= 0) break;
            s.append(c, static_cast<size_t>(n));
        }
        err_text_ += s;
        return err_text_;
    }

private:
    pid_t pid_ = -1;
    int out_ = -1, err_ = -1;
    int port_ = 0;
    bool exited_ = false;
    std::string first_line_;
    std::string err_text_;
    Clock::time_point exit_time_;
};

} // namespace support
