// common.hpp -- small blocking HTTP/1.1 client pieces shared by the bench
// tools (idle_conns, shutdown_load, kaclient). Loopback only.
#pragma once

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

// raise_nofile lifts RLIMIT_NOFILE to at least n (as root, the hard limit too).
inline void raise_nofile(rlim_t n) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur >= n) return;
    rlimit want{n, rl.rlim_max < n ? n : rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
        want.rlim_cur = rl.rlim_max;
        want.rlim_max = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &want);
    }
}

// connect_to opens a blocking TCP connection to 127.0.0.1-style host:port.
// Returns the fd, or -errno.
inline int connect_to(const std::string& host, int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

// send_all: 0 on success, else errno.
inline int send_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += w;
        n -= static_cast<size_t>(w);
    }
    return 0;
}

enum class RespResult { ok, eof_before_any, eof_partial, reset, timeout, bad };

struct Response {
    int status = 0;
    bool conn_close = false;
    size_t body_len = 0;
};

inline bool ieq_prefix(const char* line, size_t len, const char* name) {
    size_t n = strlen(name);
    if (len < n) return false;
    for (size_t i = 0; i < n; ++i)
        if (tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
    return true;
}

// read_response reads one response with a Content-Length body (or a body
// up to EOF when none is given) into `buf` (reused), within timeout_ms.
inline RespResult read_response(int fd, std::string& buf, Response& r, int timeout_ms) {
    buf.clear();
    r = Response();
    size_t head_end = std::string::npos;
    long long content_length = -1;
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    char tmp[16384];
    for (;;) {
        if (head_end != std::string::npos && content_length >= 0 &&
            buf.size() >= head_end + static_cast<size_t>(content_length)) {
            r.body_len = static_cast<size_t>(content_length);
            return RespResult::ok;
        }
        int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        deadline - Clock::now()).count());
        if (left <= 0) return RespResult::timeout;
        pollfd p{fd, POLLIN, 0};
        int pr = poll(&p, 1, left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) return RespResult::timeout;
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return errno == ECONNRESET ? RespResult::reset : RespResult::bad;
        }
        if (n == 0) {
            if (head_end != std::string::npos && content_length < 0) {
                r.body_len = buf.size() - head_end;
                return RespResult::ok;
            }
            return buf.empty() ? RespResult::eof_before_any : RespResult::eof_partial;
        }
        buf.append(tmp, static_cast<size_t>(n));
        if (head_end == std::string::npos) {
            size_t e = buf.find("\r\n\r\n");
            if (e == std::string::npos) continue;
            head_end = e + 4;
            if (buf.compare(0, 9, "HTTP/1.1 ") != 0 && buf.compare(0, 9, "HTTP/1.0 ") != 0)
                return RespResult::bad;
            r.status = atoi(buf.c_str() + 9);
            size_t pos = buf.find("\r\n") + 2;
            while (pos < e) {
                size_t eol = buf.find("\r\n", pos);
                const char* line = buf.c_str() + pos;
                size_t len = eol - pos;
                if (ieq_prefix(line, len, "content-length:"))
                    content_length = atoll(line + 15);
                else if (ieq_prefix(line, len, "connection:") &&
                         buf.find("close", pos) < eol)
                    r.conn_close = true;
                pos = eol + 2;
            }
            if (r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200))
                content_length = 0;
        }
    }
}

// rss_kib sums VmRSS of the given pids (0 when unreadable).
inline long rss_kib(const std::vector<int>& pids) {
    long total = 0;
    for (int pid : pids) {
        std::ifstream f("/proc/" + std::to_string(pid) + "/status");
        std::string line;
        while (std::getline(f, line))
            if (line.rfind("VmRSS:", 0) == 0) total += atol(line.c_str() + 6);
    }
    return total;
}

inline double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

} // namespace bench
