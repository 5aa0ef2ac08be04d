// SPDX-License-Identifier: MIT
//
// graceful_http.hpp -- a small blocking HTTP/1.1 server whose shutdown
// cannot lose a request. One header, C++17, POSIX sockets and threads.
//
// ==== Manual ====
//
// WHAT IT IS
//   A thread-per-connection HTTP/1.1 server for programs that cannot take
//   dependencies: build tools, embedded agents, test rigs. Copy this one
//   file into your project. Its reason to exist is shutdown: `serve()`
//   returns only after every connection has ended, requests in flight
//   finish, connections waiting in the kernel's accept backlog are served
//   rather than reset, and the whole drain is counted and reported.
//
// QUICK START (examples/hello.cpp, verbatim)
//
//   #include "graceful_http.hpp"
//   #include <cstdio>
//
//   int main() {
//       graceful_http::Options opt;                    // every field documented
//       opt.drain_delay = std::chrono::seconds(5);     // keep serving, report "draining"
//       graceful_http::Server srv(opt);
//       srv.get("/", [](const graceful_http::Request&, graceful_http::Response& res) {
//           res.text("hello, world\n");
//       });
//       if (auto err = srv.listen("127.0.0.1", 8080)) {         // a value, never exit()
//           std::fprintf(stderr, "%s\n", err.message().c_str());
//           return 1;
//       }
//       // Blocks until SIGINT/SIGTERM, drains for up to 10 s, returns only
//       // when every connection has ended.
//       graceful_http::ShutdownReport r =
//           graceful_http::serve_until_signal(srv, std::chrono::seconds(10));
//       return r.drained ? 0 : 3;
//   }
//
//   Build: g++ -std=c++17 -O2 -pthread hello.cpp
//
// CONTENTS (grep for the anchors)
//   >>config   version macros, the override macros, GRACEFUL_HTTP_PORTABLE
//   >>platform every difference between systems: Linux fast paths and
//              their portable fallbacks side by side
//   >>api      Options, Error, Request, Response, Server, serve_until_signal,
//              middleware and the access log, static files, forms
//   >>detail   sockets, the HTTP parser, the connection state machine
//   >>impl     out-of-class definitions
//
// GUARANTEES
//   - serve() returns only when the drain has finished or the deadline was
//     enforced, never when it starts.
//   - shutdown() returns within about a millisecond of the last connection
//     ending: completion is a condition variable, not a polling loop.
//   - shutdown() and close() are safe from any thread, any number of times,
//     before serve(), and from inside a handler (whose response is still
//     delivered).
//   - Connections queued in the accept backlog when the listener stops are
//     accepted and served with `Connection: close`, not reset.
//   - Every response written after shutdown begins says
//     `Connection: close`; idle keep-alive connections are closed with a
//     clean FIN; closing is "lingering" (half-close, read to EOF) so a
//     response the client has not read yet is never destroyed by a reset.
//   - At the deadline every connection still open is force-closed and
//     counted; the report says whether the drain completed.
//   - The library never throws and never exits the process; startup
//     failures are values naming the address and the OS error.
//   - PLATFORMS. All of the above hold on Linux (glibc and musl), macOS
//     and FreeBSD, and with GRACEFUL_HTTP_PORTABLE=1; a vanished client
//     never raises SIGPIPE anywhere. Linux alone adds: the drain refuses
//     new handshakes (a BPF filter) before its last accept, so nothing
//     is reset between that accept and the close; it waits (sock_diag)
//     for handshakes already under way; idle keep-alive connections wait
//     in one recv(). Elsewhere (and PORTABLE) the drain still serves
//     everything queued when it looks (the queue is read until empty),
//     and idle connections wait in poll() on their socket and the stop
//     wake pipe: woken at the stop just as promptly, a request already
//     arrived still served with close, one poll() more per request.
//
// LIMITATIONS (and what to do about them)
//   - No TLS: put a reverse proxy (nginx, haproxy) in front.
//   - No HTTP/2: the proxy can speak it to clients.
//   - One thread per connection: thousands of connections are accepted
//     promptly (busy connection threads accept for the acceptor), but the
//     kernel schedules them, not a FIFO: at 1,000 busy keep-alive
//     connections on one core p99 is ~0.1 s and a few requests still wait
//     seconds (bench/concurrency.sh). Not for hundreds of thousands; set
//     Options::max_connections. When a
//     connection ends its thread may wait as a spare for the next one
//     (Options::spare_threads), so thread-local state in a handler can
//     outlive one connection.
//   - HTTP/1.1 cannot make closing an idle keep-alive connection atomic: a
//     client that sends on it at the very instant it closes sees EOF with
//     no response. Clients should retry idempotent requests and use
//     idempotency keys for the rest. Use Options::drain_delay so load
//     balancers stop sending before the server stops accepting.
//   - Without the SYN filter (macOS, FreeBSD, GRACEFUL_HTTP_PORTABLE) a
//     connection whose handshake completes in the microseconds between
//     the drain's last accept() and the close of the listener is reset;
//     a handshake still under way then is refused (safe to retry). Use
//     Options::drain_delay behind a load balancer, or hand the listener
//     on (socket activation, start_successor), where nothing is closed.
//   - Where accept4/pipe2/SOCK_CLOEXEC are missing (macOS), descriptors
//     are made close-on-exec by a second call: a fork()+exec() on another
//     thread in between may inherit one. Windows is not supported (not
//     POSIX).
//   - On macOS under strict POSIX flags (-D_POSIX_C_SOURCE=...), include
//     this header before any system header, or add -D_DARWIN_C_SOURCE.
//   - A handler stuck in user code cannot be interrupted. At the deadline
//     its socket is shut down and it is reported as forced; its thread is
//     detached and keeps the server's internal state alive until it
//     returns, so nothing is ever used after free.
//
// THREADING AND LIFETIME
//   Configure routes, then listen(), then serve() on one thread. Every
//   other public member says whether it is thread-safe. Handlers run on
//   connection threads, concurrently, never with a library lock held.
//   Request& and Response& live only during the handler call: each
//   connection reuses its Request, Response and buffers for its next
//   request, so a warm keep-alive connection serves a request without
//   allocating (body buffers up to 64 KiB are kept, bigger ones freed).
//   A Server is neither copyable nor movable; its destructor shuts it
//   down (deadline 0) and waits for serve() to return.
//
// MIDDLEWARE, ERROR PAGES, ACCESS LOG (Server::use, on_error, on_request_done)
//     srv.use([](const Request& req, Response& res, const Next& next) {
//         if (req.header("X-Key") == "k") next(); else res.status = 401;
//     });
//     srv.on_request_done([](const RequestLog& r) { log(format_combined_log(r)); });
//
// FILES, UPLOADS, FORMS (serve_dir, send_file, read_body, read_multipart)
//     srv.serve_dir("/static/", "./public");   // ranges, 304/412, sendfile
//     srv.put("/up", [](const Request& req, Response& res) {  // any length
//         std::uint64_t n = 0;                  // pieces <= 64 KiB, none kept
//         if (req.read_body([&](std::string_view p) { return n += p.size(), true; }))
//             res.text(std::to_string(n) + "\n");
//     }, RouteOptions{0});                      // this route: no body limit
//
// THE SHUTDOWN PROTOCOL
//   1. shutdown(timeout) sets the deadline and marks the server shutting
//      down: handlers see req.shutdown_requested(), every response from
//      now on carries `Connection: close`.
//   2. For Options::drain_delay the server keeps accepting and serving
//      (is_draining() is true; a health check should answer 503).
//   3. Stopping: the acceptor's wake pipe becomes readable. On a TCP
//      listener of its own it refuses new handshakes (Linux: a BPF filter
//      drops bare SYNs), lets those under way land (the kernel's sock_diag
//      says when none are left), accepts everything in the backlog
//      (serving each with close), then closes the listener. Idle
//      keep-alive connections, blocked in recv() (Linux) or poll(), are
//      woken by shutting their read side or by the stop wake pipe and
//      close at once (a request that already arrived is served first);
//      silent new ones get Options::drain_silent_timeout for a first
//      byte. Spare threads end.
//   4. Completion: when the last connection ends, the condition variable
//      wakes shutdown() and serve(), which return a ShutdownReport.
//   5. Deadline: connections still open are shut down (blocked reads and
//      writes return), handlers see req.cancelled(), and the report says
//      drained == false with the count of forced connections. Their
//      threads get up to 200 ms to end; one still running user code is
//      detached (see LIMITATIONS), so shutdown() returns by then.
//
// LOCK ORDER
//   There is one library mutex (detail::Core::mu_). It is never held while
//   calling user code or blocking on a socket (only shutdown(2), which
//   wakes blocked threads, is called under it).
//
// ==== Configuration ====
// >>config
#ifndef GRACEFUL_HTTP_HPP
#define GRACEFUL_HTTP_HPP

#define GRACEFUL_HTTP_VERSION_MAJOR 0
#define GRACEFUL_HTTP_VERSION_MINOR 1
#define GRACEFUL_HTTP_VERSION_PATCH 0

// Before any include: macOS hides SO_NOSIGPIPE, MSG_DONTWAIT, O_CLOEXEC
// and NSIG when a build asks for strict POSIX (-D_POSIX_C_SOURCE=...,
// -D_XOPEN_SOURCE=..., common in build tools); _DARWIN_C_SOURCE asks for
// them back. After another system header it comes too late: >>platform
// then stops with an #error saying so.
#if defined(__APPLE__) && !defined(_DARWIN_C_SOURCE)
#define _DARWIN_C_SOURCE 1
#endif

// Exceptions are used, if at all, only to catch what a handler throws.
// Define GRACEFUL_HTTP_NO_EXCEPTIONS to 1 to force them off; otherwise it
// follows the compiler (-fno-exceptions).
#ifndef GRACEFUL_HTTP_NO_EXCEPTIONS
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define GRACEFUL_HTTP_NO_EXCEPTIONS 0
#else
#define GRACEFUL_HTTP_NO_EXCEPTIONS 1
#endif
#endif

// Internal invariants. Override to route them to your own checker.
#ifndef GRACEFUL_HTTP_ASSERT
#include <cassert> // assert() as the default invariant check
#define GRACEFUL_HTTP_ASSERT(cond) assert(cond)
#endif

// Define GRACEFUL_HTTP_PORTABLE to 1 to take, on Linux too, the portable
// fallback of every platform function (>>platform): the test suite runs
// both ways, so the code paths of macOS and the BSDs run here. It selects
// function bodies only, never a class layout; like NDEBUG it must be the
// same in every translation unit of a program (mixed, the linker keeps
// one body of each inline function: an ODR violation).
#ifndef GRACEFUL_HTTP_PORTABLE
#define GRACEFUL_HTTP_PORTABLE 0
#endif

// ==== Includes ====
#include <algorithm>          // std::min, std::find_if
#include <atomic>             // the lock-free lifecycle flags
#include <charconv>           // std::to_chars for Content-Length
#include <chrono>             // every duration and deadline
#include <condition_variable> // the completion latch and shutdown waits
#include <cstddef>            // std::size_t, offsetof
#include <cstdint>            // std::uint64_t counters
#include <cstdio>             // std::snprintf for numbers and dates
#include <cstdlib>            // getenv, strtoull for the systemd variables
#include <cstring>            // std::memcpy, std::strerror
#include <ctime>              // gmtime_r for the Date header
#include <functional>         // Handler type
#include <memory>             // shared ownership of the core by threads
#include <mutex>              // the one library mutex
#include <optional>           // RouteOptions::max_body_bytes
#include <string>             // owned text
#include <string_view>        // the parser works on views
#include <system_error>       // Error carries a std::error_code
#include <thread>             // serve_until_signal's serving and draining threads
#include <utility>            // std::move, std::pair
#include <vector>             // headers, routes, connection registry

#include <arpa/inet.h>   // inet_pton, inet_ntop
#include <csignal>       // sigaction for serve_until_signal
#include <cerrno>        // errno after every system call
#include <fcntl.h>       // fcntl O_NONBLOCK and FD_CLOEXEC, pipe2 flags
#include <netdb.h>       // getaddrinfo for host names
#include <netinet/in.h>  // sockaddr_in, sockaddr_in6
#include <netinet/tcp.h> // TCP_NODELAY, TCP_INFO
#include <poll.h>        // timed accept, reads and writes
#include <sched.h>       // sched_yield: brief spinning before blocking
#include <pthread.h>     // threads with a small, fixed stack size
#include <sys/ioctl.h>   // FIONREAD: is unread input waiting before a close?
#include <sys/socket.h>  // the sockets API
#include <sys/stat.h>    // fstat: the size and mtime of a file served
#include <climits>       // PATH_MAX for realpath
#include <sys/un.h>      // sockaddr_un for Unix domain sockets
#include <sys/uio.h>     // writev: head and body in one call
#include <sys/wait.h>    // waitpid for an abandoned successor
#include <unistd.h>      // close, pipe2, read, write
// (the headers only one system has are in >>platform)

// ==== Platform ====
// >>platform
// Every difference between the systems the header runs on lives here:
// small functions, each with its fast path and its portable fallback side
// by side. The rest of the header calls them and has no #ifdef. A fast
// path is taken where its feature test passes and GRACEFUL_HTTP_PORTABLE
// is 0; the manual (GUARANTEES, LIMITATIONS) says what each fallback
// still promises.
//
//   function              fast path (where)                  fallback
//   socket_cloexec        SOCK_CLOEXEC|SOCK_NONBLOCK         socket + fcntl
//   accept_cloexec        accept4(SOCK_CLOEXEC)              accept + fcntl, and
//                           (Linux, FreeBSD >= 10)             SO_NOSIGPIPE (macOS)
//   make_pipe             pipe2 (Linux, FreeBSD >= 10)       pipe + fcntl
//   no_sigpipe_send       MSG_NOSIGNAL (Linux, FreeBSD)      SO_NOSIGPIPE set at
//                                                              accept (macOS), else
//                                                              SIGPIPE blocked around
//                                                              the send
//   process_environ       environ                            _NSGetEnviron (macOS)
//   set_stack_size        rounded up to the page size (macOS refuses other sizes)
//   refuse_new_handshakes a BPF filter dropping SYNs (Linux) none: false
//   handshakes_in_flight  sock_diag netlink (Linux)          unknown: -1
//   kBlockingIdleRead     idle recv() woken by SHUT_RD       poll() on the socket
//                           (Linux)                            and the stop wake pipe
//   peer_done             TCP_INFO (Linux)                   never asked: true
//   send_file_part        sendfile(2) (Linux)                pread + no_sigpipe_send
//   mtime_ns              st_mtim, st_mtimespec (macOS), or whole seconds
//
// These three macros are internal and #undef'd at the end of the section.
#if defined(__linux__) && !GRACEFUL_HTTP_PORTABLE
#define GRACEFUL_HTTP_FAST_LINUX 1 // BPF, sock_diag, SHUT_RD semantics, TCP_INFO
#else
#define GRACEFUL_HTTP_FAST_LINUX 0
#endif
#if defined(SOCK_CLOEXEC) && !GRACEFUL_HTTP_PORTABLE
#define GRACEFUL_HTTP_FAST_CLOEXEC 1 // accept4, pipe2 and SOCK_* come together
#else
#define GRACEFUL_HTTP_FAST_CLOEXEC 0
#endif
#if defined(MSG_NOSIGNAL) && !defined(__APPLE__) && !GRACEFUL_HTTP_PORTABLE
// (macOS headers define MSG_NOSIGNAL from SDK 11 on, but a binary may run on
// an older system: there SO_NOSIGPIPE, which every macOS honours, is used.)
#define GRACEFUL_HTTP_FAST_NOSIGNAL 1
#else
#define GRACEFUL_HTTP_FAST_NOSIGNAL 0
#endif

#if GRACEFUL_HTTP_FAST_LINUX
#include <linux/filter.h>     // a BPF filter that refuses new handshakes while draining
#include <linux/inet_diag.h>  // sock_diag: are handshakes still under way on the
#include <linux/netlink.h>    //   listener's port? (the drain waits for them)
#include <linux/sock_diag.h>
#include <sys/sendfile.h>     // sendfile: a file body without a copy through user space
#endif
#if defined(__APPLE__) && !(defined(SO_NOSIGPIPE) && defined(MSG_DONTWAIT) && defined(O_CLOEXEC))
#error "graceful_http.hpp: include it before any system header, or build with -D_DARWIN_C_SOURCE (strict _POSIX_C_SOURCE hides SO_NOSIGPIPE, MSG_DONTWAIT and O_CLOEXEC on macOS)"
#endif
#if defined(__APPLE__)
#include <crt_externs.h> // _NSGetEnviron: environ is not visible to a macOS shared library
#else
extern "C" char** environ; // POSIX: the program declares it (glibc and musl may too)
#endif

namespace graceful_http {
namespace detail {

// set_fd_flags makes `fd` close-on-exec and, if asked, non-blocking.
inline bool set_fd_flags(int fd, bool nonblock) {
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return false;
    if (!nonblock) return true;
    int flags = ::fcntl(fd, F_GETFL);
    return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// close_keeping_errno closes `fd` after a failed setup step, leaving
// errno as that step set it.
inline void close_keeping_errno(int fd) {
    int err = errno;
    ::close(fd);
    errno = err;
}

// socket_cloexec opens a close-on-exec socket (non-blocking if asked);
// -1 and errno as socket(2). The fallback's two calls leave a window in
// which a fork() + exec() on another thread inherits the descriptor.
inline int socket_cloexec(int family, int type, bool nonblock) {
#if GRACEFUL_HTTP_FAST_CLOEXEC
    return ::socket(family, type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
#else
    int fd = ::socket(family, type, 0);
    if (fd >= 0 && !set_fd_flags(fd, nonblock)) {
        close_keeping_errno(fd);
        return -1;
    }
    return fd;
#endif
}

// accept_cloexec accepts a connection as a blocking, close-on-exec socket
// on which sending never raises SIGPIPE (with no_sigpipe_send); -1 and
// errno as accept(2).
inline int accept_cloexec(int listen_fd) {
#if GRACEFUL_HTTP_FAST_CLOEXEC
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
#else
    int fd = ::accept(listen_fd, nullptr, nullptr);
    if (fd < 0) return -1;
    // macOS and the BSDs copy O_NONBLOCK from the listener; Linux does not.
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || !set_fd_flags(fd, false) ||
        ((flags & O_NONBLOCK) != 0 && ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)) {
        close_keeping_errno(fd);
        return -1;
    }
#endif
#if !GRACEFUL_HTTP_FAST_NOSIGNAL && defined(SO_NOSIGPIPE)
    int one = 1;
    if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    return fd;
}

// make_pipe opens a close-on-exec pipe, both ends non-blocking if asked.
inline bool make_pipe(int fds[2], bool nonblock) {
#if GRACEFUL_HTTP_FAST_CLOEXEC
    return ::pipe2(fds, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0)) == 0;
#else
    if (::pipe(fds) != 0) return false;
    if (set_fd_flags(fds[0], nonblock) && set_fd_flags(fds[1], nonblock)) return true;
    close_keeping_errno(fds[0]);
    close_keeping_errno(fds[1]);
    fds[0] = fds[1] = -1;
    return false;
#endif
}

// without_sigpipe calls send() (a send(2)-like call) with SIGPIPE blocked
// in this thread, takes back one it raised (unless one was pending
// before: sendfile can raise it and still report bytes sent), and
// restores the mask.
#if GRACEFUL_HTTP_FAST_LINUX || (!GRACEFUL_HTTP_FAST_NOSIGNAL && !defined(SO_NOSIGPIPE))
template <class Send> // (compiled only where it is used)
ssize_t without_sigpipe(Send send) {
    sigset_t pipe_only, old, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    bool was_pending = ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    ssize_t n = send();
    int err = errno;
    if (!was_pending && ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        int sig = 0; // pending, so sigwait returns at once (POSIX; macOS has no sigtimedwait)
        ::sigwait(&pipe_only, &sig);
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    errno = err;
    return n;
}
#endif

// no_sigpipe_send is sendmsg(2) that never raises SIGPIPE: a vanished
// client is an EPIPE, not the end of the process.
inline ssize_t no_sigpipe_send(int fd, const msghdr* msg, int flags) {
#if GRACEFUL_HTTP_FAST_NOSIGNAL
    return ::sendmsg(fd, msg, flags | MSG_NOSIGNAL);
#elif defined(SO_NOSIGPIPE)
    return ::sendmsg(fd, msg, flags); // accept_cloexec set SO_NOSIGPIPE
#else
    // Neither (Linux with GRACEFUL_HTTP_PORTABLE): block it for the call.
    return without_sigpipe([&] { return ::sendmsg(fd, msg, flags); });
#endif
}

// process_environ is the environment start_successor passes on.
inline char** process_environ() {
#if defined(__APPLE__)
    return *::_NSGetEnviron();
#else
    return environ;
#endif
}

// set_stack_size sets a thread's stack size, rounded up to the page size
// (macOS refuses any other size; Linux rounds it itself).
inline void set_stack_size(pthread_attr_t& attr, std::size_t bytes) {
    long page = ::sysconf(_SC_PAGESIZE);
    std::size_t p = page > 0 ? static_cast<std::size_t>(page) : 4096;
    ::pthread_attr_setstacksize(&attr, (bytes + p - 1) / p * p);
}

// refuse_new_handshakes attaches a classic BPF filter to a TCP listener
// that drops pure SYNs (SYN without ACK). No new connection can then
// complete its handshake, while those already under way still do. A
// client whose SYN is dropped retransmits and then finds the port closed:
// refused, which is safe to retry. Linux only; elsewhere it returns false
// and the drain accepts until the queue is empty, then closes.
inline bool refuse_new_handshakes(int fd) {
#if GRACEFUL_HTTP_FAST_LINUX
    sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),       // the filter sees the TCP header:
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),    // byte 13 is the flags; keep SYN|ACK
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1), // SYN alone?
        BPF_STMT(BPF_RET | BPF_K, 0),                 // drop it
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffU),       // keep everything else
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
    return ::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0;
#else
    (void)fd;
    return false;
#endif
}

// handshakes_in_flight counts TCP handshakes under way (SYN_RECV) on
// local port `port`, either address family, as the kernel's sock_diag
// interface (what `ss` uses) reports them; -1 if it cannot say.
inline int handshakes_in_flight(int port) {
#if GRACEFUL_HTTP_FAST_LINUX
    int nl = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) return -1;
    timeval tv{0, 100 * 1000}; // the kernel answers at once; never hang the drain
    ::setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int count = 0;
    for (int family : {AF_INET, AF_INET6}) {
        struct {
            nlmsghdr head;
            inet_diag_req_v2 req;
        } msg{};
        msg.head.nlmsg_len = sizeof msg;
        msg.head.nlmsg_type = SOCK_DIAG_BY_FAMILY;
        msg.head.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        msg.req.sdiag_family = static_cast<unsigned char>(family);
        msg.req.sdiag_protocol = IPPROTO_TCP;
        msg.req.idiag_states = 1U << TCP_SYN_RECV;
        if (::send(nl, &msg, sizeof msg, 0) != static_cast<ssize_t>(sizeof msg)) count = -1;
        for (bool done = count < 0; !done;) {
            alignas(nlmsghdr) char buf[8192];
            ssize_t n = ::recv(nl, buf, sizeof buf, 0);
            if (n <= 0) {
                count = -1;
                break;
            }
            // The replies, one netlink message each (walked without the
            // NLMSG_* macros, which mix signed and unsigned lengths).
            const std::size_t total = static_cast<std::size_t>(n);
            const std::size_t head_len = (sizeof(nlmsghdr) + 3) & ~std::size_t{3};
            for (std::size_t off = 0; off + sizeof(nlmsghdr) <= total && !done;) {
                nlmsghdr h;
                std::memcpy(&h, buf + off, sizeof h);
                if (h.nlmsg_len < sizeof h || off + h.nlmsg_len > total ||
                    h.nlmsg_type == NLMSG_ERROR) {
                    count = -1;
                    done = true;
                } else if (h.nlmsg_type == NLMSG_DONE) {
                    done = true;
                } else if (h.nlmsg_len >= head_len + sizeof(inet_diag_msg)) {
                    inet_diag_msg d;
                    std::memcpy(&d, buf + off + head_len, sizeof d);
                    if (ntohs(d.id.idiag_sport) == port) ++count;
                }
                off += (std::size_t{h.nlmsg_len} + 3) & ~std::size_t{3};
            }
        }
        if (count < 0) break;
    }
    ::close(nl);
    return count;
#else
    (void)port;
    return -1;
#endif
}

// kBlockingIdleRead: an idle keep-alive connection waits for its next
// request in recv() itself (Conn::idle_read), woken at the stop by
// shutdown(SHUT_RD). Only Linux both wakes the recv() and keeps the input
// already queued (and still arriving) readable after SHUT_RD; elsewhere
// POSIX leaves both unspecified (the BSDs' soshutdown flushes the receive
// buffer: a request caught in that instant would be lost), so idle
// connections poll() their socket and the stop wake pipe instead.
constexpr bool kBlockingIdleRead = GRACEFUL_HTTP_FAST_LINUX != 0;

// peer_done says whether a TCP peer has closed its side (or the
// connection is gone): after shutdown(SHUT_RD) a recv() of 0 no longer
// tells an empty queue from the peer's EOF, the connection state does.
// Only the Linux idle read shuts the read side, so elsewhere it is never
// asked and says true.
inline bool peer_done(int fd) {
#if GRACEFUL_HTTP_FAST_LINUX
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return true;
    return info.tcpi_state != TCP_ESTABLISHED;
#else
    (void)fd;
    return true;
#endif
}

// ---- Static files: sending a file, its modification time ----

// send_file_part sends up to `n` bytes of `file` from `offset` to the
// non-blocking socket `sock` (-1 and errno as send(2); 0: end of file).
// Linux: sendfile(2), no copy through user space (SIGPIPE held: it has no
// MSG_NOSIGNAL). Elsewhere: pread() into a buffer, then send.
inline ssize_t send_file_part(int sock, int file, std::uint64_t offset, std::size_t n) {
#if GRACEFUL_HTTP_FAST_LINUX
    off_t off = static_cast<off_t>(offset);
    return without_sigpipe([&] { return ::sendfile(sock, file, &off, n); });
#else
    char buf[16 * 1024];
    ssize_t got = ::pread(file, buf, std::min(n, sizeof buf), static_cast<off_t>(offset));
    iovec iov{buf, got > 0 ? static_cast<std::size_t>(got) : 0};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    return got <= 0 ? got : no_sigpipe_send(sock, &msg, MSG_DONTWAIT);
#endif
}

// mtime_ns is a file's modification time in nanoseconds since the epoch,
// from whichever member this system's struct stat has: st_mtim (POSIX
// 2008: Linux, FreeBSD), st_mtimespec (macOS), else whole seconds.
template <class Stat> auto mtime_ns_of(const Stat& st, int) -> decltype(st.st_mtim.tv_nsec, std::int64_t()) {
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}
template <class Stat> auto mtime_ns_of(const Stat& st, long) -> decltype(st.st_mtimespec.tv_nsec, std::int64_t()) {
    return static_cast<std::int64_t>(st.st_mtimespec.tv_sec) * 1000000000 + st.st_mtimespec.tv_nsec;
}
template <class Stat> std::int64_t mtime_ns_of(const Stat& st, ...) {
    return static_cast<std::int64_t>(st.st_mtime) * 1000000000;
}
inline std::int64_t mtime_ns(const struct stat& st) { return mtime_ns_of(st, 0); }

} // namespace detail
} // namespace graceful_http

#undef GRACEFUL_HTTP_FAST_LINUX
#undef GRACEFUL_HTTP_FAST_CLOEXEC
#undef GRACEFUL_HTTP_FAST_NOSIGNAL

namespace graceful_http {

// ==== Public API ====
// >>api

using Duration = std::chrono::milliseconds;

// Options configures a Server. It is copied into the server at
// construction and never changes afterwards. listen() validates it and
// names the first bad field. A zero duration means "no limit" unless the
// field says otherwise.
struct Options {
    // drain_delay is the lame-duck period: for this long after shutdown()
    // begins, the server keeps accepting and serving (every response says
    // `Connection: close`) while is_draining() reports true, so a load
    // balancer polling a health check can take it out of rotation first.
    // It counts against the shutdown() timeout: a shorter timeout cuts it
    // short. Default 0: stop accepting at once.
    Duration drain_delay{0};

    // read_header_timeout bounds reading one request line and header
    // section, from the moment its first byte is awaited. On expiry the
    // client gets 408 if it had sent part of a request; a silent
    // connection is simply closed. Default 10 s. Must be > 0.
    Duration read_header_timeout{std::chrono::seconds(10)};

    // read_timeout bounds reading one request body. On expiry the
    // connection gets 408 and closes. Default 60 s; 0 means no limit.
    Duration read_timeout{std::chrono::seconds(60)};

    // write_timeout bounds writing one response (or each streamed chunk).
    // On expiry the connection is closed. Default 60 s; 0 means no limit.
    Duration write_timeout{std::chrono::seconds(60)};

    // idle_timeout bounds how long a keep-alive connection waits for its
    // next request. On expiry it is closed quietly. Default 60 s.
    // Must be > 0.
    Duration idle_timeout{std::chrono::seconds(60)};

    // drain_silent_timeout is how long a connection that has not sent a
    // single byte may still wait for its first request once the server
    // stops accepting (SHUTDOWN.md #10); a request arriving inside it is
    // served with `Connection: close`. Default 500 ms.
    Duration drain_silent_timeout{500};

    // linger_timeout bounds the lingering close: when the server closes a
    // connection that may have unread input (pipelined bytes, an unread
    // body, or a keep-alive client closed because of shutdown), it
    // half-closes the socket and discards input until the client's EOF,
    // for at most this long, so the client never sees a reset before it
    // has read its response. Default 1 s.
    Duration linger_timeout{1000};

    // max_header_bytes limits the request line plus header fields.
    // Past it the client gets 431. Default 64 KiB. Must be >= 1 KiB.
    std::size_t max_header_bytes = 64 * 1024;

    // max_request_line_bytes limits the request line alone (414 past it).
    // Default 8 KiB. Must be >= 64 and <= max_header_bytes.
    std::size_t max_request_line_bytes = 8 * 1024;

    // max_body_bytes limits a request body. Past it the client gets 413,
    // before the body is read when Content-Length announces it.
    // Default 8 MiB.
    std::size_t max_body_bytes = 8 * 1024 * 1024;

    // max_connections caps concurrent connections. At the cap the server
    // stops calling accept(), so new clients wait in the kernel backlog
    // (not refused, not reset) until a connection ends. Default 0: no cap.
    std::size_t max_connections = 0;

    // listen_backlog is passed to listen(2): how many connections the
    // kernel completes and queues before the server accepts them. When
    // it is full, new handshakes stall for a SYN retransmission (1 s and
    // more). Default 4096, as Go (which asks the kernel's somaxconn); the
    // kernel caps it at net.core.somaxconn (4096 on Linux since 5.4).
    int listen_backlog = 4096;

    // thread_stack_size is the stack of each connection thread; handlers
    // run on it. Default 256 KiB. Must be >= 64 KiB.
    std::size_t thread_stack_size = 256 * 1024;

    // spare_threads is how many connection threads may wait, after their
    // connection ends, to serve the next accepted one (creating and ending
    // a thread costs more than a short connection's whole request). A
    // spare thread ends after 5 s without a connection, and at once when
    // the server stops. Default 32; 0 means each thread ends with its
    // connection.
    std::size_t spare_threads = 32;
};

// Error is the result of a setup call: empty (false) on success, else a
// std::error_code and a Go-style message with context, such as
// "listen 127.0.0.1:8080: bind: Address already in use".
class [[nodiscard]] Error {
public:
    Error() = default;
    Error(std::error_code code, std::string message)
        : code_(code), message_(std::move(message)) {}
    explicit operator bool() const { return static_cast<bool>(code_); }
    const std::error_code& code() const { return code_; }
    const std::string& message() const { return message_; }

private:
    std::error_code code_;
    std::string message_;
};

// ShutdownReport says how a drain went. Counters cover only what
// happened after shutdown began.
struct ShutdownReport {
    bool drained = false;               // every connection ended before the deadline
    bool completed = false;             // the drain is over (false only when shutdown()
                                        // was called from inside a handler)
    std::size_t connections_forced = 0; // open at the deadline, force-closed
    Duration elapsed{0};                // from shutdown() to the end of the drain
    std::uint64_t served_from_backlog = 0; // connections accepted from the backlog after
                                           // the listener stopped, then served
    std::uint64_t served_with_close = 0;   // responses that carried Connection: close
                                           // because shutdown had begun
    std::uint64_t idle_closed = 0;    // idle keep-alive connections closed by the drain
                                      // (including one whose keep-alive stream ended
                                      // after the listener stopped)
    std::uint64_t silent_closed = 0;  // connections that never sent a byte, closed
                                      // after drain_silent_timeout
};

// Stats is a snapshot of the server's counters (thread-safe to take).
struct Stats {
    std::size_t active_connections = 0;
    std::size_t active_requests = 0;
    std::uint64_t connections_total = 0;
    std::uint64_t requests_total = 0;
    ShutdownReport drain; // the drain counters so far
};

// ConnState is where a connection is in its life (like Go's ConnState).
enum class ConnState {
    fresh,  // accepted, no request byte yet
    active, // reading a request, running its handler or writing its response
    idle,   // keep-alive: waiting for the next request
    closed, // about to be closed; reported once
};

namespace detail {
class Core;
struct Conn;
} // namespace detail

// Header is one request or response header field, as received.
struct Header {
    std::string name;
    std::string value;
};

// Request is what a handler sees. Valid only during the handler call.
// Not thread-safe except shutdown_requested(), wait_for_shutdown(),
// cancelled() and wait_for_cancel().
class Request {
public:
    std::string method;  // "GET", "POST", ... (case-sensitive, RFC 9110 §9.1)
    std::string target;  // the raw request target, as sent
    std::string path;    // percent-decoded path, without the query
    std::string query;   // raw query string, without '?'
    int version_minor = 1; // 0 for HTTP/1.0, 1 for HTTP/1.1
    std::vector<Header> headers;
    std::vector<std::pair<std::string, std::string>> params; // from {name} patterns

    // header returns the first field with this name (case-insensitive),
    // or "" when absent. has_header tells absent from empty.
    std::string_view header(std::string_view name) const;
    bool has_header(std::string_view name) const;
    // query_param returns the percent-decoded value of a query parameter,
    // or "" when absent.
    std::string query_param(std::string_view name) const;
    // param returns a path parameter captured by the route pattern.
    std::string_view param(std::string_view name) const;

    // body reads the whole request body on first call (sending
    // `100 Continue` first if the client asked for it) and returns it.
    // If reading fails (too large, timeout, malformed chunking, client
    // gone) it returns "" and body_ok() is false; the server then answers
    // with the matching error status instead of the handler's response.
    const std::string& body() const;
    bool body_ok() const;
    // read_body streams the body to on_data in pieces of <= 64 KiB, never
    // holding it whole (after `100 Continue`, if asked for), within the
    // route's limit (RouteOptions) and read_timeout for the whole body.
    // True once all was delivered. False if on_data returned false (the
    // rest is then discarded up to 256 KiB, else the connection closes)
    // or on an error, whose status (400, 408, 413) body_error() gives and
    // the server sends instead of the handler's response. A body is read
    // once: after body(), read_body delivers it as one piece.
    bool read_body(const std::function<bool(std::string_view)>& on_data) const;
    int body_error() const; // 0, or the status of a failed body read

    // shutdown_requested is true once shutdown() or close() has begun.
    bool shutdown_requested() const;
    // wait_for_shutdown blocks until shutdown begins or the timeout
    // passes; returns shutdown_requested().
    bool wait_for_shutdown(Duration timeout) const;
    // cancelled is true once this request's connection was force-closed
    // (the shutdown deadline passed, or close() was called). Its response
    // can no longer be delivered; a handler should return.
    bool cancelled() const;
    // wait_for_cancel blocks until cancelled() or the timeout passes;
    // returns cancelled(). Use it as an interruptible sleep.
    bool wait_for_cancel(Duration timeout) const;

private:
    friend class detail::Core;
    friend struct detail::Conn;
    void reset(); // for the next request on the connection, keeping capacity
    detail::Conn* conn_ = nullptr;
    std::vector<std::pair<std::string, std::string>> match_; // route matching scratch
    std::vector<Header> spare_; // fields of earlier requests, reused
    mutable std::string body_;
    mutable int body_state_ = 0; // 0 unread, 1 read, 2 failed, 3 streamed by read_body
};

// Response is filled in by a handler. Either set status, headers and
// body and return (the server writes it with one writev), or stream:
// begin_stream() sends the head, write() sends data, and the body ends
// when the handler returns (chunked unless Content-Length was set).
class Response {
public:
    int status = 200;
    std::vector<Header> headers;
    std::string body;

    // set_header replaces every field with this name (case-insensitive).
    void set_header(std::string_view name, std::string_view value);
    // text sets the body and its Content-Type (default text/plain).
    void text(std::string_view body_text,
              std::string_view content_type = "text/plain; charset=utf-8");

    // begin_stream sends the status and headers now. The body follows
    // with write(). Without a Content-Length header the body is chunked
    // (HTTP/1.1) or delimited by closing the connection (HTTP/1.0).
    // Returns false if the client is gone.
    bool begin_stream();
    // write sends part of a streamed body, blocking under back-pressure
    // up to Options::write_timeout. Returns false once the client is gone,
    // the write timed out or the connection was force-closed.
    bool write(std::string_view data);
    // write_file sends `length` bytes of the open file `file_fd` from
    // `offset` in the body (set Content-Length: not on a chunked stream,
    // where it sends nothing and returns false), never read into memory
    // (sendfile(2) on Linux), within one write_timeout. As write()
    // otherwise; false too if the file ended early. file_fd stays open.
    bool write_file(int file_fd, std::uint64_t offset, std::uint64_t length);
    bool streaming() const { return streaming_; }

    // take_over hands the connection's socket to the handler, for
    // protocol upgrades such as WebSocket: it sends the status line and
    // headers as set (say 101 with `Connection: Upgrade`; no body
    // framing is added) and returns the socket with any bytes the client
    // already sent past the request. From then on the library writes
    // nothing; it closes the socket when the handler returns. The handler
    // still counts as an active request: shutdown() waits for it, it sees
    // req.shutdown_requested(), and at the deadline its socket is shut
    // down. fd is -1 if the head could not be sent.
    struct TakenOver {
        int fd = -1;          // non-blocking; do not close it
        std::string buffered; // bytes received after the request head
    };
    TakenOver take_over();

private:
    friend class detail::Core;
    friend struct detail::Conn;
    void reset(); // for the next request on the connection, keeping capacity
    detail::Conn* conn_ = nullptr;
    std::vector<Header> spare_; // fields of earlier responses, reused by set_header
    bool streaming_ = false;
    bool taken_over_ = false;
    bool stream_failed_ = false;
};

using Handler = std::function<void(const Request&, Response&)>;

// ---- Middleware, error pages, access log ----

// Middleware (Server::use, before serve()) wraps all the router answers
// (handlers, 404, 405, OPTIONS), first registered outermost. It calls next
// (the rest of the chain) once, or answers itself. Exceptions pass out of
// next(); one left uncaught is 500.
using Next = std::function<void()>;
using Middleware = std::function<void(const Request&, Response&, const Next& next)>;
// ErrorHook (Server::on_error) may rewrite the body and headers, never the
// status or Connection, of the library's own 4xx/5xx (404, 405, 500, the
// parser's 400/408/413/431...); an unparsable head gives an empty Request.
using ErrorHook = std::function<void(int status, const Request&, Response&)>;
// RequestLog is one answered request (errors, streams, take_over too) for
// Server::on_request_done, called on its connection's thread once the
// response is written or failed; the views live only during the call.
struct RequestLog {
    std::string_view method, target, user_agent, referer; // "" when absent or unparsable
    std::string_view peer;                 // client IP ("" on a Unix socket)
    int version_minor = 1, status = 0;     // status: of the head written (0: none)
    std::uint64_t bytes = 0;               // body bytes sent
    std::chrono::microseconds duration{0}; // first request byte to last byte sent
    std::chrono::system_clock::time_point time; // when the request began
};
using RequestLogHook = std::function<void(const RequestLog&)>;
// format_common_log is r in Common Log Format (UTC, no newline), combined
// adds ` "referer" "user-agent"`; "-" if empty; `"`, `\`, CTL, non-ASCII: \xHH.
std::string format_common_log(const RequestLog& r);
std::string format_combined_log(const RequestLog& r);

// ---- Static files ----

// FileServerOptions configures Server::serve_dir and send_file.
struct FileServerOptions {
    // index is what a directory serves ("/docs/" is docs/index.html).
    // Default "index.html"; "" none. There are no listings: 404.
    std::string index = "index.html";
    // dotfiles serves names beginning with '.' (".git"). Default false: 404.
    bool dotfiles = false;
    // content_types maps extensions (no dot, any case) to a Content-Type,
    // before the built-in table (html, css, js, json, txt, svg, png, jpg,
    // wasm, pdf, ...; else application/octet-stream). Default empty.
    std::vector<std::pair<std::string, std::string>> content_types;
};

// send_file answers req with the regular file at `path`, like Go's
// ServeContent: Content-Type, Last-Modified, a strong ETag (size, mtime
// in ns), Accept-Ranges; If-Match / If-Unmodified-Since -> 412, If-None-
// Match / If-Modified-Since -> 304 (RFC 9110 §13.2.2 order); Range -> 206,
// several -> multipart/byteranges, none satisfiable -> 416; If-Range.
// Ignored (200): bad ranges, more than 16, ranges adding up to more than
// the file; dates not in IMF-fixdate form. The body goes out with
// write_file; a shutdown lets it finish. False: `path` is not a readable
// regular file (then 404), or the client left.
bool send_file(const Request& req, Response& res, const std::string& path,
               const FileServerOptions& options = FileServerOptions());

// RouteOptions refine one route (the last argument of handle()).
struct RouteOptions {
    // max_body_bytes replaces Options::max_body_bytes for this route
    // (body(), read_body() and the form readers alike); 0 means no limit,
    // for a handler that streams with read_body(). Unset: the server's.
    std::optional<std::size_t> max_body_bytes;
};

struct RunOptions;
struct GroupReport;

// Server is an HTTP/1.1 server. Not copyable, not movable.
class Server {
public:
    explicit Server(Options options = Options{});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Routes. A pattern is a path whose segments may be `{name}` (one
    // segment) or, last, `{name...}` (the rest of the path). Matching is
    // on the percent-decoded path, which is not cleaned: a `{path...}`
    // may hold "..", so check it before using it as a file name. A GET route
    // also answers HEAD. Unknown path: 404 (or not_found); known path,
    // other method: 405 with Allow. OPTIONS on a known path (or
    // `OPTIONS *`, for the whole server) gets 204 with Allow, unless a
    // handler is registered for OPTIONS there. Register before serve().
    void handle(std::string_view method, std::string_view pattern, Handler h, RouteOptions ro = {});
    void get(std::string_view p, Handler h, RouteOptions o = {}) { handle("GET", p, std::move(h), o); }
    void post(std::string_view p, Handler h, RouteOptions o = {}) { handle("POST", p, std::move(h), o); }
    void put(std::string_view p, Handler h, RouteOptions o = {}) { handle("PUT", p, std::move(h), o); }
    void del(std::string_view p, Handler h, RouteOptions o = {}) { handle("DELETE", p, std::move(h), o); }
    void not_found(Handler h);
    // serve_dir serves directory `root` at `prefix` with send_file: GET
    // /prefix/a/b.txt is root/a/b.txt. A directory serves its index; named
    // without its '/' (as "/prefix" is) it is 301 to it. Nothing outside
    // root is served: ".", ".." or empty segments, backslashes, %2F, %5C
    // are 400; dotfiles (unless options.dotfiles), symlinks leaving root 404.
    void serve_dir(std::string_view prefix, const std::string& root,
                   const FileServerOptions& options = FileServerOptions());

    // listen binds and listens on host:port ("127.0.0.1", "::1", "::" for
    // dual-stack, "localhost"). Port 0 picks a free port; see port().
    Error listen(const std::string& host, int port);
    // listen_unix binds a Unix domain stream socket at `path`. Like Go, it
    // fails if the path exists; the socket file is removed on shutdown.
    Error listen_unix(const std::string& path);
    // listen_fd adopts a socket that is already bound and listening, such
    // as one inherited from systemd or a predecessor (inherited_listeners).
    // It is made non-blocking and close-on-exec. At shutdown the server
    // closes only its own descriptor and never calls shutdown(2) on it, so
    // connections queued there survive for whoever else holds it.
    Error listen_fd(int fd);
    // listener_fd is the listening socket (-1 before listen and once the
    // drain has closed it), to hand to a successor. Thread-safe. Once it
    // has been asked for, the server treats the socket as shared: its
    // drain then leaves the socket's queue alone for the other holder.
    int listener_fd();
    // port is the bound port (after listen), else 0. Thread-safe.
    int port() const;
    // url is "http://HOST:PORT" of the listener ([::1] for IPv6), or
    // "unix:PATH" for a Unix domain socket.
    std::string url() const;

    // serve accepts and serves connections until shutdown() or close(),
    // and returns only when the drain has finished or the deadline was
    // enforced. Returns an error when not listening, and a "server
    // closed" error (std::errc::operation_canceled) at once when shutdown
    // began before serve().
    Error serve();

    // shutdown drains gracefully (see THE SHUTDOWN PROTOCOL) and returns
    // when every connection has ended or, at `timeout`, after forcing the
    // rest closed (allowing forced threads up to 200 ms to wind down, so a
    // handler stuck in user code makes it return 200 ms after `timeout`). Thread-safe, any number of times: later calls may only
    // shorten the deadline, and all return the same report. From inside a
    // handler it starts the drain and returns at once (completed false).
    ShutdownReport shutdown(Duration timeout);
    // close stops at once: the listener closes and every connection is
    // force-closed, including the caller's own when called from a handler
    // (its response is lost; use shutdown() there). Thread-safe; also ends
    // a shutdown() in progress.
    void close();

    // on_shutdown registers a function called once when shutdown begins
    // (like Go's RegisterOnShutdown), on the thread that began it, with no
    // library lock held. It must not block. Register before serve().
    void on_shutdown(std::function<void()> f);
    // on_conn_state registers a function called on a connection's own
    // thread at each change of state (like Go's Server.ConnState), with a
    // connection id unique within this server. Register before serve().
    void on_conn_state(std::function<void(std::uint64_t id, ConnState state)> f);
    void use(Middleware m);            // see Middleware, ErrorHook, RequestLog;
    void on_error(ErrorHook h);        // register them before serve()
    void on_request_done(RequestLogHook f);

    // is_shutting_down is true once shutdown() or close() began.
    bool is_shutting_down() const;
    // is_draining is true during Options::drain_delay (report "draining").
    bool is_draining() const;
    // stats returns a snapshot of the counters. Thread-safe.
    Stats stats() const;

private:
    friend GroupReport run_until_signal(const std::vector<Server*>&, const RunOptions&);
    std::shared_ptr<detail::Core> core_;
};

// RunOptions configures run_until_signal.
struct RunOptions {
    // grace is the drain deadline of every server, from the first signal.
    Duration grace{std::chrono::seconds(10)};
    // on_reload, when set, is called on SIGHUP (on the watching thread).
    // Return true when a successor has taken over (see start_successor):
    // the servers then drain as on SIGTERM. Return false to keep serving.
    // Unset: SIGHUP keeps its previous disposition.
    std::function<bool()> on_reload;
    // notify enables the sd_notify protocol when NOTIFY_SOCKET is set:
    // READY=1 once every server accepts, STOPPING=1 when the drain
    // starts, EXTEND_TIMEOUT_USEC each second of the drain, WATCHDOG=1
    // every WATCHDOG_USEC/2. It also tells a predecessor waiting in
    // start_successor that we are ready. Default true.
    bool notify = true;
};

// GroupReport is the outcome of run_until_signal: one report per server,
// in the order given, and the first serve() error if any.
struct GroupReport {
    Error error;
    std::vector<ShutdownReport> reports;
    bool reloaded = false; // the drain began because a successor took over
    bool drained() const {
        if (error) return false;
        for (const ShutdownReport& r : reports)
            if (!r.drained) return false;
        return true;
    }
};

// run_until_signal serves every server (each already listening) until
// SIGINT or SIGTERM, or until any of them stops or fails, then drains all
// of them in parallel (total time is the longest drain, not the sum) and
// returns when all are done. A second signal forces every close at once.
// The signal handlers only write to a pipe (async-signal-safe), so it is
// correct whatever threads the program already has; previous handlers
// are restored before it returns. One call at a time per process.
GroupReport run_until_signal(const std::vector<Server*>& servers, const RunOptions& options);

// serve_until_signal is run_until_signal for one server. If serve() fails
// (not listening), drained and completed are false.
ShutdownReport serve_until_signal(Server& server, Duration grace);

// ---- Forms: urlencoded and multipart/form-data ----

using FormFields = std::vector<std::pair<std::string, std::string>>; // in order

// FormResult says how reading a form went: ok(), or the status to answer
// with (400 malformed, 413 past a limit, 415 not that kind of form, or a
// failed body read's own), or stopped: a callback returned false.
struct FormResult {
    int http_status = 0;
    bool stopped = false;
    bool ok() const { return http_status == 0 && !stopped; }
};
// parse_urlencoded decodes `a=1&b=x+y` (percent escapes, '+' as space)
// into `out` in order; a name without '=' gets "". False on a bad escape.
bool parse_urlencoded(std::string_view text, FormFields& out);
// read_form fills `out` with the query's fields, then the body's when its
// Content-Type is application/x-www-form-urlencoded (read with body()).
FormResult read_form(const Request& req, FormFields& out);

// MultipartPart is the head of one part of a multipart/form-data body.
struct MultipartPart {
    std::string name;          // from Content-Disposition (RFC 7578 §4.2)
    std::string filename;      // when has_filename: a file part
    bool has_filename = false;
    std::string content_type;  // "" when absent (text/plain)
    std::vector<Header> headers;
};
struct MultipartLimits {
    std::size_t max_parts = 1000;                  // more parts: 413 (as Go)
    std::size_t max_part_header_bytes = 16 * 1024; // one part's header section: 413
};

// MultipartCallbacks receive a body part by part, in order; each may be
// empty, and returning false stops the read (FormResult::stopped).
struct MultipartCallbacks {
    std::function<bool(const MultipartPart&)> on_part; // a part begins
    std::function<bool(std::string_view)> on_data;     // some of its content
    std::function<bool()> on_part_end;                 // it ended
};
// read_multipart streams a multipart/form-data body through read_body()
// to the callbacks: file parts of any size never sit in memory. A bad or
// missing boundary or part head, or a truncated body: 400.
FormResult read_multipart(const Request& req, const MultipartCallbacks& callbacks,
                          const MultipartLimits& limits = MultipartLimits{});

// ---- Process handoff: systemd socket activation and re-exec ----

// InheritedListener is a listening socket passed by the systemd protocol.
struct InheritedListener {
    int fd = -1;
    std::string name; // from LISTEN_FDNAMES, or "unknown"
};

// inherited_listeners takes the sockets passed with LISTEN_FDS (from fd 3)
// when LISTEN_PID is this process, as systemd and start_successor do. It
// sets close-on-exec on them and unsets LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES, so a second call returns nothing. Not thread-safe
// (environment): call it at startup.
std::vector<InheritedListener> inherited_listeners();

// sd_notify sends one datagram to $NOTIFY_SOCKET (path or abstract
// "@name"), without libsystemd. False when unset or on failure.
bool sd_notify(std::string_view state);

// notify_ready tells systemd (READY=1) and a predecessor waiting in
// start_successor that this process accepts. run_until_signal calls it.
void notify_ready();

// start_successor starts argv (argv[0] is the path to execute) with the
// given listeners as LISTEN_FDS from fd 3 and a readiness pipe, and
// waits up to `ready_timeout` for the new process to call notify_ready()
// (run_until_signal does). On success *pid is its pid; on timeout or
// early exit it is killed and reaped, and the error says why; the caller
// keeps serving either way. stdout and stderr are shared.
Error start_successor(const std::vector<std::string>& argv,
                      const std::vector<InheritedListener>& listeners, Duration ready_timeout,
                      int* pid = nullptr);

// ==== Internals ====
// >>detail
namespace detail {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

inline TimePoint no_deadline() { return TimePoint::max(); }

// deadline_after: now + d, or no deadline when d is zero.
inline TimePoint deadline_after(Duration d) {
    return d.count() > 0 ? Clock::now() + d : no_deadline();
}

// ---- Text helpers ----

inline char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (to_lower(a[i]) != to_lower(b[i])) return false;
    return true;
}

// RFC 9110 §5.6.2: tchar.
inline bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

inline bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

inline std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// percent_decode decodes %XX (and '+' as space when plus_is_space).
// Returns false on a malformed escape or a decoded NUL.
inline bool percent_decode(std::string_view in, std::string& out, bool plus_is_space) {
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return false;
            int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return false;
            char d = static_cast<char>(hi * 16 + lo);
            if (d == '\0') return false;
            out.push_back(d);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return true;
}

// for_each_list_item calls f on each non-empty, trimmed element of a
// comma-separated field value (RFC 9110 §5.6.1).
template <class F>
void for_each_list_item(std::string_view v, F&& f) {
    while (!v.empty()) {
        std::size_t comma = v.find(',');
        std::string_view item = trim_ows(v.substr(0, comma));
        if (!item.empty()) f(item);
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
    }
}

inline const char* reason_phrase(int status) {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

// Day and month names for dates (not strftime's %a and %b, which follow
// the program's locale: HTTP's are English).
constexpr char kDayNames[] = "SunMonTueWedThuFriSat";
constexpr char kMonthNames[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

// format_http_date writes `secs` since the epoch as an IMF-fixdate (RFC
// 9110 §5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT") into buf.
inline std::string_view format_http_date(std::int64_t secs, char (&buf)[48]) {
    std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    int n = std::snprintf(buf, sizeof buf, "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT",
                          kDayNames + 3 * (tm.tm_wday % 7), tm.tm_mday,
                          kMonthNames + 3 * (tm.tm_mon % 12), tm.tm_year + 1900, tm.tm_hour,
                          tm.tm_min, tm.tm_sec);
    return std::string_view(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
}

// http_date is the current time as format_http_date writes it, cached per
// second per thread (the Date field of every response).
inline std::string_view http_date() {
    thread_local std::time_t cached_at = 0;
    thread_local char buf[48];
    thread_local std::string_view text;
    std::time_t now = std::time(nullptr);
    if (now != cached_at) {
        text = format_http_date(now, buf);
        cached_at = now;
    }
    return text;
}

// ---- The request head parser: a pure function over the bytes ----

enum class ParseStatus { incomplete, done, error };

struct ParseResult {
    ParseStatus status = ParseStatus::incomplete;
    int http_status = 0;        // on error: the status to answer with
    std::size_t head_bytes = 0; // on done: bytes of the head, final CRLF included
};

struct FieldView {
    std::string_view name;
    std::string_view value;
};

struct RequestHead {
    std::string_view method;
    std::string_view target;
    int version_minor = 1;
    std::vector<FieldView> fields;
};

struct HeadLimits {
    std::size_t max_request_line = 8 * 1024;
    std::size_t max_header = 64 * 1024;
};

inline ParseResult parse_error(int status) {
    ParseResult r;
    r.status = ParseStatus::error;
    r.http_status = status;
    return r;
}

// kMaxMethodBytes bounds the method token on its own, before the
// request-line limit: the longest registered method has 17 bytes.
constexpr std::size_t kMaxMethodBytes = 32;

// method_too_long: `line` (possibly incomplete) opens with a token longer
// than any method we could implement (RFC 9112 §3: SHOULD answer 501).
inline bool method_too_long(std::string_view line) {
    std::size_t n = std::min(line.size(), kMaxMethodBytes + 1);
    for (std::size_t i = 0; i < n; ++i)
        if (!is_tchar(line[i])) return false;
    return n > kMaxMethodBytes;
}

// parse_request_line: "METHOD SP target SP HTTP/1.x" (RFC 9112 §3).
inline ParseResult parse_request_line(std::string_view line, RequestHead& out) {
    std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return parse_error(400);
    std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return parse_error(400);
    out.method = line.substr(0, sp1);
    out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!is_token(out.method) || out.target.empty()) return parse_error(400);
    for (char c : out.target) {
        // RFC 9112 §3.2 / RFC 3986: visible ASCII only (no CTL, space or
        // raw UTF-8: those must be percent-encoded), and no fragment.
        unsigned char u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == '#') return parse_error(400);
    }
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
        return parse_error(400);
    if (version[5] != '1') return parse_error(505);
    // RFC 9110 §2.5: a higher minor version is answered as HTTP/1.1.
    out.version_minor = version[7] == '0' ? 0 : 1;
    ParseResult ok;
    ok.status = ParseStatus::done;
    return ok;
}

// parse_field_line: "name: OWS value OWS" (RFC 9112 §5).
inline ParseResult parse_field_line(std::string_view line, RequestHead& out) {
    if (line.front() == ' ' || line.front() == '\t') return parse_error(400); // obs-fold
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return parse_error(400);
    std::string_view name = line.substr(0, colon);
    if (!is_token(name)) return parse_error(400); // also: whitespace before the colon
    std::string_view value = trim_ows(line.substr(colon + 1));
    for (char c : value) {
        unsigned char u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f) return parse_error(400);
    }
    out.fields.push_back(FieldView{name, value});
    ParseResult ok;
    ok.status = ParseStatus::done;
    return ok;
}

// parse_request_head parses a request line and header section at the
// start of `buf`. Lines end in CRLF; a bare LF is accepted (RFC 9112
// §2.2), a bare CR is not. Resets `out` on entry.
inline ParseResult parse_request_head(std::string_view buf, const HeadLimits& limits,
                                      RequestHead& out) {
    out.method = {};
    out.target = {};
    out.version_minor = 1;
    out.fields.clear();
    std::size_t pos = 0;
    // RFC 9112 §2.2: ignore a few empty lines before the request line.
    for (int i = 0; i < 4; ++i) {
        if (buf.substr(pos, 2) == "\r\n") pos += 2;
        else if (buf.substr(pos, 1) == "\n") pos += 1;
        else break;
    }
    bool first = true;
    for (;;) {
        std::size_t nl = buf.find('\n', pos);
        std::size_t limit = first ? limits.max_request_line : limits.max_header;
        // The method's own bound comes before the line's (a 100 KB
        // method is a 501, not a 414).
        if (first && method_too_long(buf.substr(pos, nl == std::string_view::npos ? nl : nl - pos)))
            return parse_error(501);
        if (nl == std::string_view::npos) {
            if (buf.size() - (first ? pos : 0) > limit) return parse_error(first ? 414 : 431);
            ParseResult more;
            return more;
        }
        if (first && nl - pos > limits.max_request_line) return parse_error(414);
        if (nl + 1 > limits.max_header) return parse_error(431);
        std::string_view line = buf.substr(pos, nl - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find('\r') != std::string_view::npos) return parse_error(400);
        if (line.find('\0') != std::string_view::npos) return parse_error(400);
        pos = nl + 1;
        if (first) {
            ParseResult r = parse_request_line(line, out);
            if (r.status != ParseStatus::done) return r;
            first = false;
            continue;
        }
        if (line.empty()) {
            ParseResult r;
            r.status = ParseStatus::done;
            r.head_bytes = pos;
            return r;
        }
        ParseResult r = parse_field_line(line, out);
        if (r.status != ParseStatus::done) return r;
    }
}

// ---- Message framing (RFC 9112 §6) ----

// is_valid_host: uri-host [":" port] (RFC 3986 reg-name, IPv4, [IPv6]);
// empty is allowed here (RFC 9112 §3.2; frame_request refuses it for an
// origin-form target).
inline bool is_valid_host(std::string_view v) {
    for (char c : v) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::string_view("-._~!$&'()*+,;=:[]%").find(c) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

enum class BodyKind { none, length, chunked };

struct Framing {
    int error_status = 0; // non-zero: reject the request with this status
    BodyKind body = BodyKind::none;
    std::uint64_t content_length = 0;
    bool keep_alive = true;
    bool expect_continue = false;
};

// parse_content_length accepts 1*DIGIT, rejecting overflow.
inline bool parse_content_length(std::string_view s, std::uint64_t& out) {
    if (s.empty() || s.size() > 19) return false;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    out = v;
    return true;
}

// frame_request decides the body length, persistence and expectations
// of a parsed head, or the status that rejects it.
inline Framing frame_request(const RequestHead& head, std::size_t max_body) {
    Framing f;
    int hosts = 0;
    bool has_te = false, has_cl = false, chunked_last = false, cl_bad = false;
    bool unknown_coding = false, chunked_twice = false, host_bad = false;
    bool conn_close = false, conn_keep_alive = false;
    std::uint64_t cl = 0;
    for (const FieldView& fv : head.fields) {
        if (iequals(fv.name, "host")) {
            ++hosts;
            if (!is_valid_host(fv.value)) host_bad = true;
            // RFC 9112 §3.2: an empty Host is only for a target without
            // an authority; an origin-form target always has one.
            if (fv.value.empty() && !head.target.empty() && head.target.front() == '/')
                host_bad = true;
        } else if (iequals(fv.name, "transfer-encoding")) {
            has_te = true;
            for_each_list_item(fv.value, [&](std::string_view coding) {
                if (chunked_last) chunked_twice = true; // chunked must be last, once
                if (iequals(coding, "chunked")) chunked_last = true;
                else unknown_coding = true;
            });
        } else if (iequals(fv.name, "content-length")) {
            // RFC 9110 §8.6: a list of identical values may be accepted;
            // a field with no valid value at all (say ",") is an error.
            bool any = false;
            for_each_list_item(fv.value, [&](std::string_view item) {
                std::uint64_t v = 0;
                if (!parse_content_length(item, v) || ((has_cl || any) && v != cl)) cl_bad = true;
                cl = v;
                any = true;
            });
            if (!any) cl_bad = true;
            has_cl = true;
        } else if (iequals(fv.name, "connection")) {
            for_each_list_item(fv.value, [&](std::string_view opt) {
                if (iequals(opt, "close")) conn_close = true;
                else if (iequals(opt, "keep-alive")) conn_keep_alive = true;
            });
        } else if (iequals(fv.name, "expect") && head.version_minor >= 1) {
            // RFC 9110 §10.1.1: ignored in HTTP/1.0 (and no 1xx to 1.0 clients).
            if (iequals(trim_ows(fv.value), "100-continue")) f.expect_continue = true;
            else f.error_status = 417;
        }
    }
    // RFC 9112 §9.3: `close` wins; HTTP/1.0 persists only when asked.
    f.keep_alive = !conn_close && (head.version_minor >= 1 || conn_keep_alive);
    // RFC 9112 §3.2: HTTP/1.1 needs exactly one Host, with a valid value.
    bool bad_host = hosts > 1 || host_bad || (head.version_minor >= 1 && hosts == 0);
    // RFC 9112 §6.1/§6.3: Transfer-Encoding with Content-Length is an
    // error (request smuggling); chunked must be the final coding, once.
    bool bad_te = has_te && (has_cl || head.version_minor == 0 || !chunked_last || chunked_twice);
    if (bad_host || bad_te || (!has_te && cl_bad)) f.error_status = 400;
    else if (has_te && unknown_coding) f.error_status = 501;
    if (f.error_status != 0 && f.error_status != 417) return f;
    if (has_te) {
        f.body = BodyKind::chunked;
    } else if (has_cl && cl > 0) {
        f.body = BodyKind::length;
        f.content_length = cl;
        if (cl > max_body && f.error_status == 0) f.error_status = 413;
    }
    return f;
}

// ---- The chunked decoder: incremental, pure (RFC 9112 §7.1) ----

class ChunkedDecoder {
public:
    enum class Status { more, done, error };
    struct Result {
        Status status = Status::more;
        std::size_t consumed = 0;
        int http_status = 0; // on error: 400 or 413
    };

    explicit ChunkedDecoder(std::size_t max_body = SIZE_MAX, std::size_t max_meta = 64 * 1024)
        : max_body_(max_body), max_meta_(max_meta) {}

    // feed decodes as much of `in` as it can, appending data to `out`
    // unless `out` is null (discarding). Call again with more input while
    // the status is `more`.
    Result feed(std::string_view in, std::string* out);
    std::uint64_t total() const { return total_; }

private:
    enum class State { size, ext, size_lf, data, data_cr, data_lf, trailer_start, trailer,
                       trailer_lf, final_lf, done };
    Result fail(std::size_t consumed, int status) {
        state_ = State::done;
        failed_status_ = status; // feeding again repeats the error
        Result r;
        r.status = Status::error;
        r.consumed = consumed;
        r.http_status = status;
        return r;
    }
    // Where in `*( BWS ";" BWS name [ BWS "=" BWS value ] )` (RFC 9112
    // §7.1.1) the chunk extensions are; `value` is a token or quoted-string.
    enum class Ext { pre_semi, name_start, name, post_name, value_start, token, quoted,
                     quoted_pair, post_value };
    bool ext_step(char c);
    bool ext_may_end() const { return ext_ == Ext::name || ext_ == Ext::token || ext_ == Ext::post_value; }
    State state_ = State::size;
    Ext ext_ = Ext::pre_semi;
    std::uint64_t chunk_left_ = 0;
    std::uint64_t total_ = 0;
    int size_digits_ = 0;
    std::size_t meta_ = 0; // extension and trailer bytes seen
    std::size_t max_body_;
    std::size_t max_meta_;
    int failed_status_ = 0;
};

inline ChunkedDecoder::Result ChunkedDecoder::feed(std::string_view in, std::string* out) {
    if (failed_status_ != 0) return fail(0, failed_status_);
    std::size_t i = 0;
    while (i < in.size()) {
        char c = in[i];
        switch (state_) {
        case State::size: {
            int h = hex_value(c);
            if (h >= 0) {
                if (++size_digits_ > 15) return fail(i, 400); // would overflow
                chunk_left_ = chunk_left_ * 16 + static_cast<std::uint64_t>(h);
                ++i;
            } else if (size_digits_ > 0 && (c == ';' || c == ' ' || c == '\t')) {
                state_ = State::ext; // "5 \r\n" is not a chunk-ext: BWS needs a ";"
                ext_ = c == ';' ? Ext::name_start : Ext::pre_semi;
                ++i;
            } else if (size_digits_ > 0 && c == '\r') {
                state_ = State::size_lf;
                ++i;
            } else {
                return fail(i, 400);
            }
            break;
        }
        case State::ext: // chunk extensions are checked and ignored
            if (++meta_ > max_meta_) return fail(i, 400);
            if (c == '\r' && ext_may_end()) state_ = State::size_lf;
            else if (c == '\r' || !ext_step(c)) return fail(i, 400);
            ++i;
            break;
        case State::size_lf:
            if (c != '\n') return fail(i, 400);
            ++i;
            size_digits_ = 0;
            if (chunk_left_ == 0) {
                state_ = State::trailer_start;
            } else {
                if (chunk_left_ > max_body_ - std::min<std::uint64_t>(total_, max_body_))
                    return fail(i, 413);
                state_ = State::data;
            }
            break;
        case State::data: {
            std::size_t n = static_cast<std::size_t>(
                std::min<std::uint64_t>(chunk_left_, in.size() - i));
            if (out) out->append(in.data() + i, n);
            i += n;
            chunk_left_ -= n;
            total_ += n;
            if (chunk_left_ == 0) state_ = State::data_cr;
            break;
        }
        case State::data_cr:
            if (c != '\r') return fail(i, 400);
            state_ = State::data_lf;
            ++i;
            break;
        case State::data_lf:
            if (c != '\n') return fail(i, 400);
            state_ = State::size;
            ++i;
            break;
        case State::trailer_start:
            if (c == '\r') {
                state_ = State::final_lf;
                ++i;
                break;
            }
            state_ = State::trailer;
            break;
        case State::trailer: // trailer fields are accepted and ignored
            if (c == '\r') state_ = State::trailer_lf;
            else if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || ++meta_ > max_meta_)
                return fail(i, c == '\n' ? 400 : (meta_ > max_meta_ ? 431 : 400));
            ++i;
            break;
        case State::trailer_lf:
            if (c != '\n') return fail(i, 400);
            state_ = State::trailer_start;
            ++i;
            break;
        case State::final_lf: {
            if (c != '\n') return fail(i, 400);
            state_ = State::done;
            Result r;
            r.status = Status::done;
            r.consumed = i + 1;
            return r;
        }
        case State::done: {
            Result r;
            r.status = Status::done;
            r.consumed = i;
            return r;
        }
        }
    }
    Result r;
    r.consumed = i;
    r.status = state_ == State::done ? Status::done : Status::more;
    return r;
}

// ext_step moves through the chunk extensions by one byte; false: it
// breaks the grammar ("5;", "5;a b", "5;=x" are all 400).
inline bool ChunkedDecoder::ext_step(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    bool ws = c == ' ' || c == '\t';
    switch (ext_) {
    case Ext::pre_semi:
    case Ext::post_value:
        if (c == ';') ext_ = Ext::name_start;
        else if (ws) ext_ = Ext::pre_semi;
        return c == ';' || ws;
    case Ext::name_start:
        if (is_tchar(c)) ext_ = Ext::name;
        return ws || is_tchar(c);
    case Ext::name:
    case Ext::post_name:
        if (c == ';') ext_ = Ext::name_start;
        else if (c == '=') ext_ = Ext::value_start;
        else if (ws) ext_ = Ext::post_name;
        else return ext_ == Ext::name && is_tchar(c);
        return true;
    case Ext::value_start:
        if (c == '"') ext_ = Ext::quoted;
        else if (is_tchar(c)) ext_ = Ext::token;
        return ws || c == '"' || is_tchar(c);
    case Ext::token:
        if (c == ';') ext_ = Ext::name_start;
        else if (ws) ext_ = Ext::pre_semi;
        return c == ';' || ws || is_tchar(c);
    case Ext::quoted: // qdtext: HTAB, SP, VCHAR but '"' and '\\', obs-text
        if (c == '"') ext_ = Ext::post_value;
        else if (c == '\\') ext_ = Ext::quoted_pair;
        return c == '\t' || (u >= 0x20 && u != 0x7f);
    case Ext::quoted_pair:
        ext_ = Ext::quoted;
        return c == '\t' || (u >= 0x20 && u != 0x7f);
    }
    return false;
}

// ---- Router ----

struct Route {
    std::string method;
    std::vector<std::string> segments; // "{name}" / "{name...}" or literal
    Handler handler;
    std::optional<std::size_t> max_body; // RouteOptions::max_body_bytes
};

inline std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> out;
    if (!path.empty() && path.front() == '/') path.remove_prefix(1);
    for (;;) {
        std::size_t slash = path.find('/');
        out.emplace_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return out;
}

inline bool is_param(const std::string& seg) {
    return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}';
}
inline bool is_wildcard(const std::string& seg) {
    return is_param(seg) && seg.size() > 5 && seg.compare(seg.size() - 4, 4, "...}") == 0;
}

// match_route: does `path` (decoded) match the route's pattern? Fills
// params. Pure function.
inline bool match_route(const Route& route, std::string_view path,
                        std::vector<std::pair<std::string, std::string>>& params) {
    params.clear();
    if (path.empty() || path.front() != '/') return route.segments.size() == 1 && path == "*" &&
                                                      route.segments[0] == "*";
    std::string_view rest = path.substr(1);
    for (std::size_t i = 0; i < route.segments.size(); ++i) {
        const std::string& seg = route.segments[i];
        if (is_wildcard(seg) && i + 1 == route.segments.size()) {
            params.emplace_back(seg.substr(1, seg.size() - 5), std::string(rest));
            return true;
        }
        std::size_t slash = rest.find('/');
        std::string_view part = rest.substr(0, slash);
        if (is_param(seg)) {
            if (part.empty()) return false;
            params.emplace_back(seg.substr(1, seg.size() - 2), std::string(part));
        } else if (part != seg) {
            return false;
        }
        if (i + 1 == route.segments.size()) return slash == std::string_view::npos;
        if (slash == std::string_view::npos) return false;
        rest.remove_prefix(slash + 1);
    }
    return false;
}

// ---- Sockets ----

enum class Wait { ready, timeout, woken, error };

// wait_fd polls `fd` for `events` until `deadline`, also returning
// `woken` when `wake_fd` (if >= 0) becomes readable.
inline Wait wait_fd(int fd, short events, TimePoint deadline, int wake_fd = -1) {
    for (;;) {
        int timeout_ms = -1;
        if (deadline != no_deadline()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - Clock::now() + std::chrono::microseconds(999));
            if (left.count() <= 0) return Wait::timeout;
            timeout_ms = static_cast<int>(std::min<long long>(left.count(), 1 << 30));
        }
        pollfd p[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
        int n = ::poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Wait::error;
        }
        if (n == 0) {
            if (deadline == no_deadline()) continue;
            if (Clock::now() >= deadline) return Wait::timeout;
            continue;
        }
        if (p[0].revents != 0) return Wait::ready;
        if (wake_fd >= 0 && p[1].revents != 0) return Wait::woken;
    }
}

// send_all writes every iovec (no_sigpipe_send: a vanished client never
// raises SIGPIPE), waiting for POLLOUT under back-pressure.
inline bool send_all(int fd, iovec* iov, int count, TimePoint deadline) {
    while (count > 0) {
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = static_cast<decltype(msg.msg_iovlen)>(count);
        ssize_t n = no_sigpipe_send(fd, &msg, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (wait_fd(fd, POLLOUT, deadline) != Wait::ready) return false;
                continue;
            }
            return false;
        }
        std::size_t left = static_cast<std::size_t>(n);
        while (count > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            ++iov;
            --count;
        }
        if (count > 0) {
            iov->iov_base = static_cast<char*>(iov->iov_base) + left;
            iov->iov_len -= left;
        }
    }
    return true;
}

// nap waits 1 ms (less if `deadline` is nearer): the only wait left for
// a socket whose read side is shut, which poll() reports always readable.
inline Wait nap(TimePoint deadline) {
    TimePoint now = Clock::now();
    if (now >= deadline) return Wait::timeout;
    auto d = std::min<Duration>(std::chrono::milliseconds(1),
                                std::chrono::duration_cast<Duration>(deadline - now));
    timespec ts{0, static_cast<long>(std::chrono::nanoseconds(d).count())};
    while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return Wait::ready;
}

// A hook for tests only: called, when set, as an idle wait returns (the
// blocking recv() of idle_read, or the poll() of wait_for_request where
// kBlockingIdleRead is false), to widen the window between the wait
// returning and the thread claiming the input.
inline std::atomic<void (*)()>& idle_read_hook() {
    static std::atomic<void (*)()> hook{nullptr};
    return hook;
}

// A hook for tests only: called, when set, by the acceptor before each
// accept(), so a test can hold the acceptor as a busy core would.
inline std::atomic<void (*)()>& accept_hook() {
    static std::atomic<void (*)()> hook{nullptr};
    return hook;
}

// errno_text: strerror is not thread-safe; the error category is.
inline std::string errno_text(int err) { return std::system_category().message(err); }

inline std::string host_port(const std::string& host, int port) {
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

inline Error sys_error(const std::string& context, int err) {
    return Error(std::error_code(err, std::system_category()),
                 context + ": " + errno_text(err));
}

// close_quietly closes an fd we own, ignoring EINTR (Linux closes anyway).
inline void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// ---- Lifecycle ----

enum class Phase {
    idle,     // constructed or listening, serve() not yet running
    serving,  // accepting and serving
    draining, // drain delay: still accepting, responses close
    stopping, // listener closing, waiting for connections to end
    done,     // the drain is over
};

// Conn is one connection, owned by its thread. Registered in the Core
// (under mu_) so the deadline can shut its socket down.
struct Conn {
    Core* core = nullptr;
    int fd = -1;
    bool from_backlog = false;
    TimePoint accepted_at;
    pthread_t tid{};        // guarded by Core::mu_, valid once has_tid
    bool has_tid = false;   // guarded by Core::mu_: set by thread_started or spawn
    std::size_t slot = 0;   // guarded by Core::mu_: index in Core::conns_
    bool detached = false;  // guarded by Core::mu_
    std::atomic<bool> cancelled{false};
    // idle_wait: 1 while the thread waits for the next request in recv()
    // (idle_read); the stopper swaps 1 for 2 and shuts the read side to
    // wake it. Whoever swaps first decides (see begin_stopping_locked).
    std::atomic<int> idle_wait{0};
    bool rd_shut = false;      // our read side was shut to wake us: nap, not poll
    bool rcvtimeo_set = false; // SO_RCVTIMEO = idle_timeout is on the socket
    std::uint64_t id = 0;
    ConnState state = ConnState::fresh;
    std::size_t requests = 0;
    bool broken = false; // a write failed: nothing more can be sent
    bool announced = false; // on_conn_state has seen this connection

    std::string in; // received bytes not yet consumed

    // The current request's body and response framing.
    Framing framing;
    bool head_only = false;
    bool continue_sent = false;
    bool body_done = true;
    int body_error = 0;
    std::uint64_t body_left = 0;
    std::size_t body_limit = 0; // the route's (Core::route)
    std::string piece;          // read_body's pieces pass through here (64 KiB at most)
    ChunkedDecoder decoder;
    enum class Stream { none, chunked, fixed, until_close } stream = Stream::none;
    std::uint64_t stream_left = 0;
    bool close_after = false;

    enum class Read { data, eof, timeout, error, again };
    enum class Next { keep_alive, linger, drop };
    TimePoint head_started_at;
    int req_minor = 1;
    bool closed_for_shutdown = false;
    std::string out; // the response head being written (reused)
    RequestHead head_;
    Request req_;
    Response res_;
    int status_sent = 0;         // for the access log: the status line sent,
    std::uint64_t body_sent = 0; // the body bytes sent, the client's address
    std::string peer;            // (looked up on first use)

    void log_request();
    void run();
    Next serve_one();
    bool wait_for_request();
    Read idle_read();
    Wait wait_readable(TimePoint deadline);
    bool read_head(RequestHead& head, ParseResult& pr);
    Read read_more(TimePoint deadline, std::size_t want = 0);
    Read read_into(std::string& buf, TimePoint deadline, std::size_t want, bool exact);
    using Sink = std::function<bool(std::string_view)>;
    bool read_body(std::string* out_body, std::size_t limit, const Sink* sink = nullptr);
    bool discard_body();
    void set_state(ConnState s);
    Next finish_response(const Request& req, Response& res, bool handler_ok);
    void decide_close();
    enum class Body { whole, stream, none };
    void build_head(const Response& res, Body mode);
    bool send_response(const Response& res);
    void send_error(int status);
    bool begin_stream(Response& res);
    Response::TakenOver take_over(Response& res);
    bool write_stream(std::string_view data);
    bool end_stream();
    void lingering_close();
};

// Core is the server's state, shared by the Server object and every
// connection thread, so a stuck thread never outlives it.
class Core : public std::enable_shared_from_this<Core> {
public:
    explicit Core(const Options& o) : opt_(o) {}
    ~Core();

    Error listen(const std::string& host, int port);
    Error listen_unix(const std::string& path);
    Error listen_fd(int fd);
    int listener_fd();
    void wait_until_serving();
    Error serve();
    ShutdownReport shutdown(Duration timeout);
    void close();
    Stats stats() const;

    const Options opt_;
    std::vector<Route> routes_;
    Handler not_found_;
    std::atomic<int> port_{0};
    std::string host_;
    std::string unix_path_;        // non-empty: listening on a Unix socket
    bool unlink_on_close_ = false; // we created unix_path_
    bool owns_listener_ = false;   // a TCP listener only this process holds
    bool tcp_ = false;             // TCP, and kBlockingIdleRead (set before serving)
    std::vector<std::function<void()>> on_shutdown_;
    std::function<void(std::uint64_t, ConnState)> on_conn_state_;
    std::vector<Middleware> middleware_;                     // Server::use
    ErrorHook on_error_;                                     // Server::on_error
    RequestLogHook on_request_done_;                         // Server::on_request_done
    std::atomic<bool> shutting_down_{false};
    std::atomic<Phase> phase_{Phase::idle};

    bool stopping() const { return phase_.load(std::memory_order_acquire) >= Phase::stopping; }
    void route(Request& req, Response& res);
    void run_chain(std::size_t i, Request& req, Response& res);
    void error_page(int status, const Request& req, Response& res);
    void wait_serve_returned();
    bool wait_shutdown_for(Duration timeout);
    bool wait_cancel_for(const Conn& c, Duration timeout);
    void request_started();
    void request_finished(bool closed_for_shutdown, bool from_backlog);
    void count_idle_closed();
    void count_silent_closed();
    TimePoint stop_began() const;
    int stop_wake_fd() const { return stop_wake_[0]; }
    // Spare is where a connection thread waits for its next connection.
    // Owned by the Core and recycled, never freed while it lives: spawn()
    // may notify one after unlocking mu_, when its thread may have moved on.
    struct Spare {
        std::condition_variable cv;
        pthread_t tid{};      // guarded by mu_
        Conn* conn = nullptr; // guarded by mu_: handed over by spawn()
        bool quit = false;    // guarded by mu_: the server stops, or kSpareLinger passed
    };
    Spare* conn_exited(Conn* c, Spare* spare);
    Conn* next_conn(Spare& spare);
    void help_accept(TimePoint now);
    void thread_started(Conn* c);

private:
    void begin_shutdown_locked(Duration timeout, bool force);
    void begin_stopping_locked();
    void force_locked();
    void spawn(int fd, bool from_backlog);
    int start_thread(Conn* c);
    void unregister_locked(Conn* c);
    void accept_loop();
    void drain_backlog_and_close_listener();
    void finish_drain();
    void reap_finished();
    void poke(int fd);
    bool open_wake_pipes();
    Error check_can_listen(const std::string& where);
    Error bind_and_listen(int fd, const sockaddr* addr, socklen_t len, const std::string& where,
                          const std::string& unix_path);
    Error adopt_listener(int fd, const std::string& where, const std::string& host, int port,
                         const std::string& unix_path, bool unlink_on_close);
    void run_shutdown_hooks();
    void close_listener_locked();

    mutable std::mutex mu_;
    std::condition_variable cv_;       // any change of counters or phase
    int listen_fd_ = -1;               // owned by the acceptor (serve) once serving
    int accept_wake_[2] = {-1, -1};    // readable: the acceptor re-reads the phase
    int stop_wake_[2] = {-1, -1};      // readable from stopping on: idle connections close
    bool listening_ = false;           // guarded by mu_
    bool serve_running_ = false;       // guarded by mu_
    bool serve_called_ = false;        // guarded by mu_: serve() was entered
    bool controller_claimed_ = false;  // guarded by mu_: someone finishes the drain
    bool forced_ = false;              // guarded by mu_: close() or the deadline
    TimePoint shutdown_began_;         // guarded by mu_
    TimePoint drain_end_;              // guarded by mu_
    TimePoint deadline_;               // guarded by mu_
    TimePoint stop_began_;             // guarded by mu_
    std::vector<Conn*> conns_;         // guarded by mu_
    std::vector<pthread_t> finished_;  // guarded by mu_: exited, to join
    std::vector<Spare*> spares_;       // guarded by mu_: waiting threads, newest last
    std::vector<std::unique_ptr<Spare>> spare_pool_; // guarded by mu_: every Spare made
    std::vector<Spare*> spare_free_;   // guarded by mu_: Spares no thread holds
    // For help_accept, read without mu_:
    std::atomic<int> help_fd_{-1};            // the listener while helpers may accept, else -1
    std::atomic<std::size_t> helpers_{0};     // threads inside help_accept
    std::atomic<Clock::rep> next_help_at_{0}; // steady-clock ticks: no helper before then
    std::atomic<std::size_t> open_conns_{0};  // conns_.size()
    // Per-request counters are atomics: the request path takes no lock
    // shared by all connections unless a drain counter changes.
    std::atomic<std::size_t> active_requests_{0};
    std::uint64_t connections_total_ = 0; // guarded by mu_
    std::atomic<std::uint64_t> requests_total_{0};
    ShutdownReport report_;               // guarded by mu_

    friend struct Conn;
};

// The core of the connection thread running on this thread, if any: lets
// shutdown() know it was called from inside a handler.
inline Core*& current_core() {
    thread_local Core* core = nullptr;
    return core;
}

// invoke_user runs user code; the one place exceptions are caught.
template <class F> inline bool invoke_user(const F& f) {
#if GRACEFUL_HTTP_NO_EXCEPTIONS
    f();
    return true;
#else
    try {
        f();
        return true;
    } catch (...) {
        return false;
    }
#endif
}

// ---- Middleware, error pages, access log ----

// peer_address is the numeric IP of the socket's peer, "" if it has none.
inline std::string peer_address(int fd) {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    char text[INET6_ADDRSTRLEN] = "";
    ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len); // on failure no family matches
    if (a.ss_family == AF_INET) ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&a)->sin_addr, text, sizeof text);
    if (a.ss_family == AF_INET6) ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&a)->sin6_addr, text, sizeof text);
    return text;
}

// format_log writes r in Common (or Combined) Log Format. Fields are "-"
// when empty, escaped so that a client can neither end one nor forge a line.
inline std::string format_log(const RequestLog& r, bool combined) {
    std::string out;
    auto field = [&out](std::string_view s, const char* after) {
        if (s.empty()) out += '-';
        for (char c : s) {
            auto u = static_cast<unsigned char>(c);
            char hex[8];
            if (u >= 0x20 && u <= 0x7e && c != '"' && c != '\\') out += c; // else \xHH, as nginx
            else out.append(hex, static_cast<std::size_t>(std::snprintf(hex, sizeof hex, "\\x%02x", u)));
        }
        out += after;
    };
    std::time_t t = std::chrono::system_clock::to_time_t(r.time);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char date[96];
    std::snprintf(date, sizeof date, " - - [%02d/%.3s/%04d:%02d:%02d:%02d +0000] \"", tm.tm_mday,
                  kMonthNames + 3 * (tm.tm_mon % 12), tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    field(r.peer, date);
    field(r.method, r.method.empty() ? "" : " ");
    if (!r.method.empty()) field(r.target, r.version_minor == 0 ? " HTTP/1.0" : " HTTP/1.1");
    out += "\" " + std::to_string(r.status) + (r.bytes > 0 ? " " + std::to_string(r.bytes) : " -");
    if (combined) {
        out += " \"";
        field(r.referer, "\" \"");
        field(r.user_agent, "\"");
    }
    return out;
}

// ---- Static files: dates, ranges, path checks ----

// parse_http_date reads an IMF-fixdate only (not the obsolete RFC 850 and
// asctime forms): what it read must format back to exactly the input, so
// a wrong weekday or an out-of-range field is refused.
inline bool parse_http_date(std::string_view s, std::int64_t& secs) {
    static const int kCum[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    s = trim_ows(s);
    if (s.size() != 29) return false;
    auto num = [&](std::size_t at, std::size_t len) -> std::int64_t { // -1: not all digits
        std::int64_t v = 0;
        for (char c : s.substr(at, len)) {
            if (c < '0' || c > '9') return -1;
            v = v * 10 + (c - '0');
        }
        return v;
    };
    std::size_t mon = std::string_view(kMonthNames).find(s.substr(8, 3));
    std::int64_t year = num(12, 4), day = num(5, 2), h = num(17, 2), m = num(20, 2), sec = num(23, 2);
    if (mon == std::string_view::npos || mon % 3 != 0 || year < 1 || day < 1 || h < 0 || m < 0 ||
        sec < 0)
        return false;
    mon /= 3;
    std::int64_t y = year - (mon < 2 ? 1 : 0); // leap days since 1970: to y
    std::int64_t days = (year - 1970) * 365 + (y / 4 - y / 100 + y / 400 - 477) +
                        kCum[mon] + day - 1;
    secs = ((days * 24 + h) * 60 + m) * 60 + sec;
    char back[48];
    return format_http_date(secs, back) == s;
}

// ByteRange is `length` bytes from `first`; RangeSet the ranges asked for.
struct ByteRange { std::uint64_t first = 0, length = 0; };
struct RangeSet { static constexpr std::size_t kMax = 16; ByteRange ranges[kMax]; std::size_t count = 0; };
enum class RangeStatus { ignore, ok, unsatisfiable };

// parse_range reads a Range field (RFC 9110 §14.1.2: "bytes=0-99,-5,200-")
// for `size` bytes. ok: `out` has the satisfiable ranges, clamped, in
// order. unsatisfiable: none is (416). ignore (send it all): another unit,
// bad syntax, 20 digits, more than kMax ranges or than `size` bytes in all.
inline RangeStatus parse_range(std::string_view v, std::uint64_t size, RangeSet& out) {
    out.count = 0;
    v = trim_ows(v);
    if (v.size() < 6 || !iequals(v.substr(0, 6), "bytes=")) return RangeStatus::ignore;
    bool bad = false;
    std::size_t items = 0;
    std::uint64_t sum = 0;
    for_each_list_item(v.substr(6), [&](std::string_view item) {
        std::size_t dash = item.find('-');
        std::uint64_t a = 0, b = 0;
        bool has_a = dash > 0 && dash != std::string_view::npos, has_b = dash + 1 < item.size();
        bad = bad || ++items > RangeSet::kMax || dash == std::string_view::npos ||
              (has_a && !parse_content_length(item.substr(0, dash), a)) ||
              (has_b && !parse_content_length(item.substr(dash + 1), b)) ||
              (!has_a && !has_b) || (has_a && has_b && b < a);
        if (bad || (has_a ? a >= size : b == 0 || size == 0)) return; // unsatisfiable
        ByteRange& r = out.ranges[out.count++];
        r.first = has_a ? a : size - std::min(b, size); // "-b": the last b bytes
        r.length = (has_a && has_b ? std::min(b, size - 1) : size - 1) - r.first + 1;
        bad = r.length > size - sum; // sum <= size until then
        sum += r.length;
    });
    if (bad || items == 0) out.count = 0;
    return bad || items == 0 ? RangeStatus::ignore
                             : out.count == 0 ? RangeStatus::unsatisfiable : RangeStatus::ok;
}

// etag_listed: is `etag` in an If-Match / If-None-Match list? "*" is any;
// weak comparison ignores a W/ prefix, strong comparison refuses it.
inline bool etag_listed(std::string_view list, std::string_view etag, bool weak) {
    bool found = false;
    for_each_list_item(list, [&](std::string_view item) {
        if (weak && item.substr(0, 2) == "W/") item.remove_prefix(2);
        found = found || item == "*" || item == etag;
    });
    return found;
}

// check_file_path: may a decoded path below a mount point join the root?
// bad (400): a ".", ".." or empty segment (so no absolute path), a
// backslash or NUL. hidden (404): a segment starting with '.'.
enum class PathCheck { ok, bad, hidden };
inline PathCheck check_file_path(std::string_view rel, bool dotfiles) {
    PathCheck r = PathCheck::ok;
    if (rel.find_first_of(std::string_view("\\\0", 2)) != std::string_view::npos) return PathCheck::bad;
    for (std::size_t slash = 0; slash != std::string_view::npos && !rel.empty();) {
        slash = rel.find('/');
        std::string_view seg = rel.substr(0, slash);
        if (seg.empty() || seg == "." || seg == "..") return PathCheck::bad;
        if (seg.front() == '.' && !dotfiles) r = PathCheck::hidden;
        rel.remove_prefix(std::min(rel.size(), slash + 1)); // "dir/" ends here: a directory
    }
    return r;
}

// ---- Forms: the urlencoded and multipart parsers (pure, incremental) ----

inline bool append_urlencoded(std::string_view text, FormFields& out) {
    for (std::string name, value; !text.empty();) {
        std::string_view pair = text.substr(0, text.find('&'));
        text.remove_prefix(std::min(text.size(), pair.size() + 1));
        std::size_t eq = std::min(pair.find('='), pair.size());
        if (pair.empty()) continue;
        if (!percent_decode(pair.substr(0, eq), name, true) ||
            !percent_decode(pair.substr(std::min(eq + 1, pair.size())), value, true))
            return false;
        out.emplace_back(name, value);
    }
    return true;
}

// media_type_is: does a Content-Type name this type (parameters aside)?
inline bool media_type_is(std::string_view content_type, std::string_view type) {
    return iequals(trim_ows(content_type.substr(0, content_type.find(';'))), type);
}

// field_param finds `key` in a field's `; key=value` parameters (RFC 9110
// §5.6.6), unquoted; only \" and \\ escape: browsers send a path's '\' as is.
inline bool field_param(std::string_view v, std::string_view key, std::string& out) {
    for (std::size_t i = v.find(';'); i < v.size(); i = i < v.size() ? v.find(';', i) : i) {
        std::size_t eq = v.find_first_of("=;", ++i);
        bool match = iequals(trim_ows(v.substr(i, eq - i)), key);
        out.clear();
        i = eq;
        if (i < v.size() && v[i] == '=') {
            while (++i < v.size() && (v[i] == ' ' || v[i] == '\t')) {}
            if (i < v.size() && v[i] == '"') {
                for (++i; i < v.size() && v[i] != '"'; out.push_back(v[i++]))
                    if (v[i] == '\\' && i + 1 < v.size() && (v[i + 1] == '"' || v[i + 1] == '\\')) ++i;
                if (i++ >= v.size()) return false; // unterminated quoted-string
            } else {
                out.assign(trim_ows(v.substr(i, v.find(';', i) - i)));
            }
        }
        if (match) return true;
    }
    out.clear(); // not found: empty
    return false;
}

// multipart_boundary: 0 and a multipart/form-data boundary (RFC 2046 §5.1.1:
// 1-70 bchars, not ending in a space), 415 (another type) or 400 (bad).
inline int multipart_boundary(std::string_view content_type, std::string& out) {
    if (!media_type_is(content_type, "multipart/form-data")) return 415;
    bool ok = field_param(content_type, "boundary", out) && !out.empty() && out.size() <= 70 &&
              out.back() != ' ';
    for (char c : out) // bchars: DIGIT, ALPHA and these
        ok = ok && ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
                    std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos);
    return ok ? 0 : 400;
}

// MultipartParser reads a multipart/form-data body fed in pieces of any
// size, keeping only what may still hold a delimiter or a part's head.
class MultipartParser {
public:
    // As if the body began with CRLF: the first delimiter is like the rest.
    MultipartParser(std::string_view boundary, const MultipartLimits& limits,
                    const MultipartCallbacks& callbacks)
        : delim_("\r\n--" + std::string(boundary)), buf_("\r\n"), limits_(limits), cb_(callbacks) {}
    FormResult feed(std::string_view data) {
        if (!result_.ok() || state_ == State::epilogue) return result_;
        buf_.append(data);
        std::size_t pos = 0; // consumed prefix of buf_
        while (result_.ok() && step(pos)) {}
        buf_.erase(0, pos);
        return result_;
    }
    // finish: the body ended; without the close delimiter it was truncated.
    FormResult finish() {
        if (result_.ok() && state_ != State::epilogue) result_.http_status = 400;
        return result_;
    }

private:
    enum class State { preamble, after_delim, head, data, epilogue };
    bool fail(int status) { result_.http_status = status; return false; }
    bool call(bool more) { result_.stopped = !more; return more; }
    bool step(std::size_t& pos);
    bool part_head(std::string_view head);

    std::string delim_, buf_;
    MultipartLimits limits_;
    const MultipartCallbacks& cb_;
    MultipartPart part_;
    std::size_t parts_ = 0;
    State state_ = State::preamble;
    FormResult result_;
};

// step makes one move through buf_ from `pos`; false: wait for more (or stop).
inline bool MultipartParser::step(std::size_t& pos) {
    constexpr auto npos = std::string_view::npos;
    std::string_view b = std::string_view(buf_).substr(pos);
    switch (state_) {
    case State::preamble: // ignored (RFC 2046 §5.1.1), like the part contents up to the delimiter
    case State::data: {
        std::size_t hit = b.find(delim_);
        std::size_t safe = b.size() >= delim_.size() ? b.size() - delim_.size() + 1 : 0;
        std::size_t n = hit != npos ? hit : safe; // what cannot begin a delimiter
        bool data = state_ == State::data;
        if (data && n > 0 && cb_.on_data && !call(cb_.on_data(b.substr(0, n)))) return false;
        pos += n;
        if (hit == npos) return false;
        if (data && cb_.on_part_end && !call(cb_.on_part_end())) return false;
        pos += delim_.size();
        state_ = State::after_delim;
        return true;
    }
    case State::after_delim: { // "--" closes (the epilogue is ignored); else padding, CRLF
        if (b.substr(0, 2) == "--") {
            state_ = State::epilogue;
            break;
        }
        std::size_t i = std::min(b.find_first_not_of(" \t"), b.size());
        if (i > limits_.max_part_header_bytes) return fail(413); // endless padding
        if (i + 1 >= b.size()) return false;
        if (b[i] != '\r' || b[i + 1] != '\n') return fail(400);
        pos += i + 2;
        state_ = State::head;
        return true;
    }
    case State::head: {
        std::size_t end = b.find("\r\n\r\n");
        if (end == npos) return b.size() > limits_.max_part_header_bytes + 3 ? fail(413) : false;
        if (end > limits_.max_part_header_bytes || ++parts_ > limits_.max_parts) return fail(413);
        if (!part_head(b.substr(0, end))) return fail(400);
        pos += end + 4;
        state_ = State::data;
        return !cb_.on_part || call(cb_.on_part(part_));
    }
    case State::epilogue: break;
    }
    pos = buf_.size();
    return false;
}

// part_head: a part's fields, with `Content-Disposition: form-data; name=` (RFC 7578 §4.2).
inline bool MultipartParser::part_head(std::string_view head) {
    part_.content_type.clear();
    part_.headers.clear();
    bool named = false;
    while (!head.empty()) {
        std::string_view line = head.substr(0, head.find("\r\n"));
        head.remove_prefix(std::min(head.size(), line.size() + 2));
        std::size_t colon = line.find(':');
        std::string_view name = line.substr(0, colon), value = trim_ows(line.substr(colon + 1));
        if (colon == std::string_view::npos || !is_token(name) ||
            value.find_first_of(std::string_view("\0\r\n", 3)) != std::string_view::npos)
            return false;
        part_.headers.push_back(Header{std::string(name), std::string(value)});
        if (iequals(name, "content-type")) part_.content_type.assign(value);
        if (!iequals(name, "content-disposition")) continue;
        if (!media_type_is(value, "form-data") || !field_param(value, "name", part_.name))
            return false;
        named = true;
        part_.has_filename = field_param(value, "filename", part_.filename);
    }
    return named;
}

} // namespace detail

// ==== Definitions ====
// >>impl

namespace detail {

// How long a forced connection's thread may take to notice its socket
// was shut down before it is reported stuck and detached.
constexpr std::chrono::milliseconds kForceGrace{200};
// A body the handler did not read is discarded up to this size to keep
// the connection alive; past it the connection closes instead.
constexpr std::size_t kMaxDiscard = 256 * 1024;
// Between requests a connection keeps its request and response bodies'
// buffers up to this size (bigger ones are freed), and up to kSpareFields
// spare request fields and as many response fields (for set_header to
// refill): a warm keep-alive connection serves a request without
// allocating (tests/test_alloc.cpp).
constexpr std::size_t kKeepBytes = 64 * 1024;
constexpr std::size_t kSpareFields = 16;
// A body with a Content-Length up to this size is read into one buffer
// reserved up front.
constexpr std::size_t kReserveBytes = 1024 * 1024;

// clear_keeping empties a body buffer, keeping it up to kKeepBytes (plus
// the rounding of the capacity: libc++, as on macOS, gives a 64 KiB
// string a capacity of 64 KiB + 15; libstdc++ exactly 64 KiB).
inline void clear_keeping(std::string& buf) {
    if (buf.capacity() > kKeepBytes + 64) std::string().swap(buf); // do not keep big bodies
    buf.clear();
}

// resize_fields gives `fields` n elements, moving surplus ones to `spare`
// (up to kSpareFields) and taking new ones from it: their strings keep
// the capacity they grew to.
inline void resize_fields(std::vector<Header>& fields, std::vector<Header>& spare, std::size_t n) {
    for (; fields.size() > n; fields.pop_back())
        if (spare.size() < kSpareFields) spare.push_back(std::move(fields.back()));
    for (; fields.size() < n; spare.pop_back()) {
        if (spare.empty()) {
            fields.resize(n);
            break;
        }
        fields.push_back(std::move(spare.back()));
    }
}

// How long the backlog drain waits, once new handshakes are refused, for
// handshakes already under way to land in the accept queue.
constexpr std::chrono::milliseconds kHandshakeGrace{10};

// kSpinTries: where the next event is usually microseconds away -- the
// acceptor right after an accept (under load the next connection follows),
// a new connection whose request has not arrived yet (clients send it
// right after connecting) -- try this many times, yielding the CPU in
// between, before blocking. sched_yield() runs any thread that has work,
// so the spin only takes time the core would spend idle, and it spares
// the sender waking a sleeping thread on another core (an interrupt; on
// a VM an exit). Measured: +20 % new connections per second (bench/).
constexpr int kSpinTries = 20;
// Spinning pays only while the core has idle time: with many connections
// sched_yield() hands the core to each of them in turn, so a yield waits
// for all of them (at 1,000 connections, tens of ms). No spin from here on.
constexpr std::size_t kSpinMaxConns = 64;

// A spare connection thread (Options::spare_threads) ends after this long
// without a connection.
constexpr std::chrono::seconds kSpareLinger{5};

// Connection threads accept for the acceptor (Core::help_accept). After an
// accept() that found the queue empty, none tries again for kHelpInterval:
// at most ~1,000 extra accept() calls a second, however many requests a
// second are served.
constexpr std::chrono::milliseconds kHelpInterval{1};

inline Error validate_options(const Options& o) {
    auto bad = [](const char* field, const char* why) {
        return Error(std::make_error_code(std::errc::invalid_argument),
                     std::string("listen: invalid Options::") + field + ": " + why);
    };
    if (o.drain_delay.count() < 0) return bad("drain_delay", "must be >= 0");
    if (o.read_header_timeout.count() <= 0) return bad("read_header_timeout", "must be > 0");
    if (o.read_timeout.count() < 0) return bad("read_timeout", "must be >= 0");
    if (o.write_timeout.count() < 0) return bad("write_timeout", "must be >= 0");
    if (o.idle_timeout.count() <= 0) return bad("idle_timeout", "must be > 0");
    if (o.drain_silent_timeout.count() < 0) return bad("drain_silent_timeout", "must be >= 0");
    if (o.linger_timeout.count() < 0) return bad("linger_timeout", "must be >= 0");
    if (o.max_header_bytes < 1024) return bad("max_header_bytes", "must be >= 1024");
    if (o.max_request_line_bytes < 64 || o.max_request_line_bytes > o.max_header_bytes)
        return bad("max_request_line_bytes", "must be >= 64 and <= max_header_bytes");
    if (o.listen_backlog <= 0) return bad("listen_backlog", "must be > 0");
    if (o.thread_stack_size < 64 * 1024) return bad("thread_stack_size", "must be >= 65536");
    return Error();
}

// ---- Core: listening ----

inline Core::~Core() {
    close_listener_locked();
    for (int* p : {accept_wake_, stop_wake_}) {
        close_fd(p[0]);
        close_fd(p[1]);
    }
}

inline bool Core::open_wake_pipes() {
    return make_pipe(accept_wake_, true) && make_pipe(stop_wake_, true);
}

// poke makes a wake pipe readable (it stays readable: level-triggered).
inline void Core::poke(int fd) {
    char c = 1;
    if (fd >= 0) {
        ssize_t n = ::write(fd, &c, 1); // EAGAIN: already readable, fine
        (void)n;
    }
}

inline Error Core::listen(const std::string& host, int port) {
    std::string where = "listen " + host_port(host, port);
    if (Error e = check_can_listen(where)) return e;
    if (port < 0 || port > 65535)
        return Error(std::make_error_code(std::errc::invalid_argument), where + ": bad port");
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    std::string h = host.empty() ? "0.0.0.0" : host;
    if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(port));
        addr_len = sizeof(sockaddr_in);
    } else if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(port));
        addr_len = sizeof(sockaddr_in6);
    } else {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        int rc = ::getaddrinfo(h.c_str(), nullptr, &hints, &res);
        if (rc != 0 || res == nullptr)
            return Error(std::make_error_code(std::errc::address_not_available),
                         where + ": lookup: " + ::gai_strerror(rc));
        std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
        addr_len = res->ai_addrlen;
        ::freeaddrinfo(res);
        if (addr.ss_family == AF_INET) v4->sin_port = htons(static_cast<std::uint16_t>(port));
        else v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    }
    int fd = socket_cloexec(addr.ss_family, SOCK_STREAM, true);
    if (fd < 0) return sys_error(where + ": socket", errno);
    int one = 1, zero = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); // TIME_WAIT only
    if (addr.ss_family == AF_INET6) // "::" is dual-stack; other v6 addresses are v6 only
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, h == "::" ? &zero : &one, sizeof one);
    if (Error e = bind_and_listen(fd, reinterpret_cast<sockaddr*>(&addr), addr_len, where, ""))
        return e;
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
    int p = bound.ss_family == AF_INET
                ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    Error e = adopt_listener(fd, where, h, p, "", false);
    std::lock_guard<std::mutex> lk(mu_);
    owns_listener_ = !e;
    return e;
}

inline Error Core::listen_unix(const std::string& path) {
    std::string where = "listen unix:" + path;
    if (Error e = check_can_listen(where)) return e;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return Error(std::make_error_code(std::errc::filename_too_long), where + ": bad path length");
    std::memcpy(addr.sun_path, path.data(), path.size());
    int fd = socket_cloexec(AF_UNIX, SOCK_STREAM, true);
    if (fd < 0) return sys_error(where + ": socket", errno);
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    if (Error e = bind_and_listen(fd, reinterpret_cast<sockaddr*>(&addr), len, where, path))
        return e;
    return adopt_listener(fd, where, "", 0, path, true);
}

// bind_and_listen binds `fd` and listens, or closes it and says which
// step failed. A Unix socket file bind created is removed if listen fails
// (one that already existed makes bind fail and is left alone).
inline Error Core::bind_and_listen(int fd, const sockaddr* addr, socklen_t len,
                                   const std::string& where, const std::string& unix_path) {
    if (::bind(fd, addr, len) != 0) {
        int err = errno;
        close_fd(fd);
        return sys_error(where + ": bind", err);
    }
    if (::listen(fd, opt_.listen_backlog) != 0) {
        int err = errno;
        close_fd(fd);
        if (!unix_path.empty()) ::unlink(unix_path.c_str());
        return sys_error(where + ": listen", err);
    }
    return Error();
}

inline Error Core::check_can_listen(const std::string& where) {
    if (Error e = validate_options(opt_)) return e;
    std::lock_guard<std::mutex> lk(mu_);
    if (shutting_down_)
        return Error(std::make_error_code(std::errc::operation_canceled), where + ": server closed");
    if (listening_)
        return Error(std::make_error_code(std::errc::already_connected),
                     where + ": already listening");
    return Error();
}

// adopt_listener makes a bound, listening socket the server's listener.
inline Error Core::adopt_listener(int fd, const std::string& where, const std::string& host,
                                  int port, const std::string& unix_path, bool unlink_on_close) {
    int one = 1; // accepted sockets inherit it: one call instead of one per connection
    if (unix_path.empty()) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_storage local{};
    socklen_t local_len = sizeof local;
    tcp_ = ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0 &&
           (local.ss_family == AF_INET || local.ss_family == AF_INET6) && kBlockingIdleRead;
    if (!open_wake_pipes()) {
        int err = errno;
        close_fd(fd);
        if (unlink_on_close) ::unlink(unix_path.c_str());
        return sys_error(where + ": pipe", err);
    }
    std::lock_guard<std::mutex> lk(mu_);
    listen_fd_ = fd;
    listening_ = true;
    host_ = host;
    unix_path_ = unix_path;
    unlink_on_close_ = unlink_on_close;
    port_ = port;
    return Error();
}

inline Error Core::listen_fd(int fd) {
    std::string where = "listen fd " + std::to_string(fd);
    if (Error e = check_can_listen(where)) return e;
    int accepting = 0;
    socklen_t len = sizeof accepting;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0)
        return sys_error(where, errno);
    if (!accepting)
        return Error(std::make_error_code(std::errc::invalid_argument),
                     where + ": not a listening socket");
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return sys_error(where + ": fcntl", errno);
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
    char text[INET6_ADDRSTRLEN] = "";
    if (bound.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&bound);
        ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
        return adopt_listener(fd, where, text, ntohs(a->sin_port), "", false);
    }
    if (bound.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&bound);
        ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
        return adopt_listener(fd, where, text, ntohs(a->sin6_port), "", false);
    }
    auto* u = reinterpret_cast<sockaddr_un*>(&bound);
    return adopt_listener(fd, where, "", 0, u->sun_path, false);
}

inline int Core::listener_fd() {
    std::lock_guard<std::mutex> lk(mu_);
    owns_listener_ = false; // it may now be shared (a handoff): never filter it
    return listen_fd_;
}

// wait_until_serving returns once serve() has been entered: it is then
// accepting, or it has already failed or returned.
inline void Core::wait_until_serving() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return serve_called_; });
}

inline void Core::run_shutdown_hooks() {
    for (const auto& f : on_shutdown_) f(); // registered before serve(): no lock needed
}

// close_listener_locked closes the listening socket (and removes the
// Unix socket file we created).
inline void Core::close_listener_locked() {
    if (listen_fd_ < 0) return;
    close_fd(listen_fd_);
    if (unlink_on_close_) ::unlink(unix_path_.c_str());
}

// ---- Core: the lifecycle ----

inline void Core::begin_stopping_locked() {
    if (phase_.load() >= Phase::stopping) return;
    stop_began_ = Clock::now();
    phase_ = Phase::stopping;
    help_fd_.store(-1); // no helper starts accepting now; the drain waits for one that did
    for (Spare* s : spares_) { // they end now; finish_drain joins them
        s->quit = true;
        finished_.push_back(s->tid);
        s->cv.notify_one();
    }
    spares_.clear();
    // Idle keep-alive connections waiting in recv(): shutting the read side
    // wakes them; bytes already received are still read first. After the
    // phase store above (both seq_cst): a thread that publishes
    // idle_wait = 1 later sees `stopping` itself and never blocks.
    for (Conn* c : conns_) {
        int waiting = 1;
        if (c->idle_wait.compare_exchange_strong(waiting, 2)) ::shutdown(c->fd, SHUT_RD);
    }
    poke(stop_wake_[1]);
    poke(accept_wake_[1]);
    cv_.notify_all();
}

inline void Core::begin_shutdown_locked(Duration timeout, bool force) {
    TimePoint now = Clock::now();
    shutting_down_ = true;
    shutdown_began_ = now;
    deadline_ = force ? now : now + timeout;
    drain_end_ = now + opt_.drain_delay;
    if (force || !serve_running_ || opt_.drain_delay.count() <= 0) begin_stopping_locked();
    else phase_ = Phase::draining;
    poke(accept_wake_[1]);
    cv_.notify_all();
}

// force_locked shuts down every registered connection's socket so
// blocked reads and writes return, and marks their requests cancelled.
inline void Core::force_locked() {
    if (forced_) return;
    forced_ = true;
    report_.connections_forced = conns_.size();
    for (Conn* c : conns_) {
        c->cancelled = true;
        ::shutdown(c->fd, SHUT_RDWR);
    }
    poke(accept_wake_[1]);
    cv_.notify_all();
}

inline Error Core::serve() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        serve_called_ = true;
        cv_.notify_all();
        if (shutting_down_)
            return Error(std::make_error_code(std::errc::operation_canceled),
                         "serve: server closed");
        if (!listening_)
            return Error(std::make_error_code(std::errc::invalid_argument),
                         "serve: not listening (call listen first)");
        if (serve_running_)
            return Error(std::make_error_code(std::errc::device_or_resource_busy),
                         "serve: already serving");
        serve_running_ = true;
        controller_claimed_ = true;
        phase_ = Phase::serving;
        help_fd_.store(listen_fd_);
    }
    accept_loop();
    drain_backlog_and_close_listener();
    finish_drain();
    std::lock_guard<std::mutex> lk(mu_);
    serve_running_ = false;
    cv_.notify_all();
    return Error();
}

// accept_loop accepts until the server starts stopping.
inline void Core::accept_loop() {
    bool ready = false; // the last accept succeeded: try again before poll()
    for (;;) {
        reap_finished();
        TimePoint wake_at = no_deadline();
        {
            std::unique_lock<std::mutex> lk(mu_);
            if (phase_.load() == Phase::draining) {
                wake_at = std::min(drain_end_, deadline_);
                if (forced_ || Clock::now() >= wake_at) begin_stopping_locked();
            }
            if (phase_.load() >= Phase::stopping) return;
            // At the cap, stop calling accept(): new clients wait in the
            // kernel backlog instead of being refused.
            // Connections that helpers (help_accept) are accepting count.
            auto at_cap = [&] {
                return opt_.max_connections > 0 &&
                       conns_.size() + helpers_.load() >= opt_.max_connections;
            };
            if (at_cap()) {
                cv_.wait_until(lk, wake_at, [&] {
                    return !at_cap() || phase_.load() != Phase::serving || !finished_.empty();
                });
                continue;
            }
        }
        if (!ready) {
            Wait w = wait_fd(listen_fd_, POLLIN, wake_at, accept_wake_[0]);
            if (w == Wait::woken) {
                char buf[64];
                while (::read(accept_wake_[0], buf, sizeof buf) > 0) {
                }
                continue;
            }
            if (w != Wait::ready) continue;
        }
        auto accept_one = [&] {
            if (auto hook = accept_hook().load()) hook();
            return accept_cloexec(listen_fd_);
        };
        int fd = accept_one();
        bool spin_ok = open_conns_.load(std::memory_order_relaxed) < kSpinMaxConns;
        for (int spin = 0; ready && spin_ok && fd < 0 && errno == EAGAIN && spin < kSpinTries; ++spin) {
            ::sched_yield(); // see kSpinTries
            fd = accept_one();
        }
        ready = fd >= 0; // under load the next one is often queued already
        if (fd >= 0) {
            spawn(fd, false);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            // Out of descriptors: wait for a connection to end (or 50 ms)
            // rather than spin on a listener that stays readable.
            std::unique_lock<std::mutex> lk(mu_);
            cv_.wait_for(lk, std::chrono::milliseconds(50));
        }
    }
}

// drain_backlog_and_close_listener accepts every connection already
// queued in the kernel (SHUTDOWN.md #7: closing would reset them), then
// closes the listener. Nothing is accepted after close().
inline void Core::drain_backlog_and_close_listener() {
    // On a TCP listener only we hold, stop new handshakes first, so that
    // no connection can complete between the last accept and the close
    // (the kernel would reset it, request and all). Handshakes already
    // under way complete: we wait for them while the kernel reports any on
    // our port, at most kHandshakeGrace without a new one landing.
    // A connection thread may still be inside help_accept(): it stops at
    // its next accept (help_fd_ is -1 from stopping on), never blocking.
    while (helpers_.load() != 0) std::this_thread::yield();
    bool filtered = owns_listener_ && listen_fd_ >= 0 && refuse_new_handshakes(listen_fd_);
    TimePoint grace_end = Clock::now() + kHandshakeGrace;
    // Bounded: under a flood of new connections the queue may never be
    // empty; what is queued at the start is at most the listen backlog.
    for (int accepted = 0; accepted <= opt_.listen_backlog;) {
        {
            std::lock_guard<std::mutex> lk(mu_);
            if (forced_ || listen_fd_ < 0) break;
        }
        int fd = accept_cloexec(listen_fd_);
        if (fd >= 0) {
            spawn(fd, true);
            ++accepted;
            grace_end = Clock::now() + kHandshakeGrace;
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (!filtered) break; // EAGAIN: the queue is empty
        TimePoint now = Clock::now();
        if (now >= grace_end || handshakes_in_flight(port_) == 0) break;
        wait_fd(listen_fd_, POLLIN, std::min(grace_end, now + std::chrono::milliseconds(1)));
    }
    std::lock_guard<std::mutex> lk(mu_);
    close_listener_locked();
}

// finish_drain waits for the last connection or the deadline, forces
// what is left, joins the threads and publishes the report.
inline void Core::finish_drain() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!conns_.empty() && !forced_ && Clock::now() < deadline_)
        cv_.wait_until(lk, deadline_);
    if (!conns_.empty()) force_locked();
    if (!conns_.empty()) {
        cv_.wait_for(lk, kForceGrace, [&] { return conns_.empty(); });
        for (Conn* c : conns_) { // stuck in user code: keeps the Core alive
            if (c->has_tid) ::pthread_detach(c->tid); // else thread_started does
            c->detached = true;
        }
    }
    report_.drained = report_.connections_forced == 0;
    report_.completed = true;
    lk.unlock();
    reap_finished();
    lk.lock();
    report_.elapsed = std::chrono::duration_cast<Duration>(Clock::now() - shutdown_began_);
    phase_ = Phase::done;
    cv_.notify_all();
}

inline void Core::reap_finished() {
    std::vector<pthread_t> done;
    {
        std::lock_guard<std::mutex> lk(mu_);
        done.swap(finished_);
    }
    for (pthread_t t : done) ::pthread_join(t, nullptr);
}

inline ShutdownReport Core::shutdown(Duration timeout) {
    std::unique_lock<std::mutex> lk(mu_);
    if (!shutting_down_) {
        begin_shutdown_locked(timeout, false);
        lk.unlock();
        run_shutdown_hooks();
        lk.lock();
    } else if (Clock::now() + timeout < deadline_) {
        deadline_ = Clock::now() + timeout; // later calls may only shorten it
        poke(accept_wake_[1]);
        cv_.notify_all();
    }
    if (current_core() == this) { // inside a handler: waiting would wait on itself
        ShutdownReport r = report_;
        r.completed = false;
        return r;
    }
    if (!controller_claimed_) { // serve() is not running: finish the drain here
        controller_claimed_ = true;
        lk.unlock();
        drain_backlog_and_close_listener();
        finish_drain();
        lk.lock();
    }
    cv_.wait(lk, [&] { return phase_.load() == Phase::done; });
    return report_;
}

inline void Core::close() {
    std::unique_lock<std::mutex> lk(mu_);
    if (phase_.load() == Phase::done) return;
    bool began = !shutting_down_;
    if (began) begin_shutdown_locked(Duration(0), true);
    deadline_ = std::min(deadline_, Clock::now());
    begin_stopping_locked();
    force_locked();
    bool control = current_core() != this && !controller_claimed_;
    controller_claimed_ = controller_claimed_ || control;
    lk.unlock();
    if (began) run_shutdown_hooks();
    if (!control) return;
    drain_backlog_and_close_listener();
    finish_drain();
}

inline void Core::wait_serve_returned() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return !serve_running_; });
}

inline Stats Core::stats() const {
    std::lock_guard<std::mutex> lk(mu_);
    Stats s;
    s.active_connections = conns_.size();
    s.active_requests = active_requests_.load(std::memory_order_relaxed);
    s.connections_total = connections_total_;
    s.requests_total = requests_total_.load(std::memory_order_relaxed);
    s.drain = report_;
    return s;
}

inline TimePoint Core::stop_began() const {
    std::lock_guard<std::mutex> lk(mu_);
    return stop_began_;
}

inline bool Core::wait_shutdown_for(Duration timeout) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return shutting_down_.load(); });
}

inline bool Core::wait_cancel_for(const Conn& c, Duration timeout) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return c.cancelled.load(); });
}

inline void Core::request_started() {
    active_requests_.fetch_add(1, std::memory_order_relaxed);
    requests_total_.fetch_add(1, std::memory_order_relaxed);
}

inline void Core::request_finished(bool closed_for_shutdown, bool first_from_backlog) {
    active_requests_.fetch_sub(1, std::memory_order_relaxed);
    if (!closed_for_shutdown && !first_from_backlog) return;
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_for_shutdown) ++report_.served_with_close;
    if (first_from_backlog) ++report_.served_from_backlog;
}

inline void Core::count_idle_closed() {
    std::lock_guard<std::mutex> lk(mu_);
    ++report_.idle_closed;
}

inline void Core::count_silent_closed() {
    std::lock_guard<std::mutex> lk(mu_);
    ++report_.silent_closed;
}

// ---- Core: connection threads ----

struct ThreadStart {
    std::shared_ptr<Core> core;
    Conn* conn;
};

// connection_thread serves its connection, then, as a spare, the next
// ones spawn() hands it, until there are none.
inline void* connection_thread(void* arg) {
    std::unique_ptr<ThreadStart> start(static_cast<ThreadStart*>(arg));
    std::shared_ptr<Core> core = std::move(start->core);
    Conn* conn = start->conn;
    start.reset();
    current_core() = core.get();
    core->thread_started(conn);
    Core::Spare* spare = nullptr;
    while (conn != nullptr) {
        conn->run();
        spare = core->conn_exited(conn, spare);
        conn = spare != nullptr ? core->next_conn(*spare) : nullptr;
    }
    current_core() = nullptr;
    return nullptr; // `core` may be the last owner: the Core ends here
}

// start_thread creates the thread for `c`, without mu_: creating a
// thread can take long on a busy machine (the stack's mmap waits for the
// process's memory map), and every accept would wait behind it. The
// thread records its own tid (thread_started), so `c` is never touched
// here once the thread may run.
inline int Core::start_thread(Conn* c) {
    auto start = std::make_unique<ThreadStart>(ThreadStart{shared_from_this(), c});
    pthread_attr_t attr;
    ::pthread_attr_init(&attr);
    set_stack_size(attr, opt_.thread_stack_size);
    pthread_t tid{};
    int rc = ::pthread_create(&tid, &attr, connection_thread, start.get());
    ::pthread_attr_destroy(&attr);
    if (rc == 0) static_cast<void>(start.release()); // now owned by the thread
    return rc;
}

// thread_started: a new connection thread records its tid, and detaches
// itself if the drain already gave up on its connection (finish_drain).
inline void Core::thread_started(Conn* c) {
    std::lock_guard<std::mutex> lk(mu_);
    c->tid = ::pthread_self();
    c->has_tid = true;
    if (c->detached) ::pthread_detach(c->tid);
}

// unregister_locked removes `c` from conns_ (the last one takes its slot).
inline void Core::unregister_locked(Conn* c) {
    Conn* last = conns_.back();
    last->slot = c->slot;
    conns_[c->slot] = last;
    conns_.pop_back();
    open_conns_.store(conns_.size());
}

inline void Core::spawn(int fd, bool from_backlog) {
    auto conn = std::make_unique<Conn>();
    conn->core = this;
    conn->fd = fd;
    conn->from_backlog = from_backlog;
    conn->accepted_at = Clock::now();
    std::unique_lock<std::mutex> lk(mu_);
    if (forced_) {
        lk.unlock();
        ::close(fd); // the client sees EOF
        return;
    }
    Conn* c = conn.release(); // registered: owned by conns_ from here
    c->slot = conns_.size();
    c->id = ++connections_total_;
    conns_.push_back(c);
    open_conns_.store(conns_.size());
    Spare* woken = nullptr;
    if (!spares_.empty()) { // a waiting thread takes it: no thread to create
        woken = spares_.back();
        spares_.pop_back();
        c->tid = woken->tid;
        c->has_tid = true;
        woken->conn = c;
    }
    lk.unlock();
    // After unlocking, so the spare does not wake into a held mutex; a
    // Spare outlives its thread's use of it (see Spare).
    if (woken != nullptr) {
        woken->cv.notify_one();
        return;
    }
    if (start_thread(c) == 0) return;
    lk.lock(); // no thread: unregister, as conn_exited would
    unregister_locked(c);
    cv_.notify_all();
    lk.unlock();
    ::close(fd); // the client sees EOF
    delete c;
}

// conn_exited unregisters a finished connection and decides, in the same
// critical section, whether its thread stays as a spare (it returns the
// Spare to wait on, already in spares_, so a stop that begins now will
// join it) or ends (null: it is in finished_, or detached).
inline Core::Spare* Core::conn_exited(Conn* c, Spare* spare) {
    int fd = c->fd;
    {
        std::lock_guard<std::mutex> lk(mu_);
        unregister_locked(c);
        bool stay = !c->detached && phase_.load() < Phase::stopping && !forced_ &&
                    spares_.size() < opt_.spare_threads;
        if (stay) {
            if (spare == nullptr && !spare_free_.empty()) {
                spare = spare_free_.back();
                spare_free_.pop_back();
            } else if (spare == nullptr) {
                spare_pool_.push_back(std::make_unique<Spare>());
                spare = spare_pool_.back().get();
            }
            spare->tid = ::pthread_self(); // conn_exited runs on c's own thread
            spare->conn = nullptr;
            spare->quit = false;
            spares_.push_back(spare);
        } else {
            if (!c->detached) finished_.push_back(::pthread_self());
            if (spare != nullptr) spare_free_.push_back(spare);
            spare = nullptr;
        }
        cv_.notify_all();
    }
    ::close(fd); // after unregistering: force never touches a reused fd
    delete c;
    return spare;
}

// next_conn waits, as a spare, for spawn() to hand over a connection.
// Null: the server stops or kSpareLinger passed; the thread ends.
inline Conn* Core::next_conn(Spare& spare) {
    std::unique_lock<std::mutex> lk(mu_);
    TimePoint until = Clock::now() + kSpareLinger;
    while (spare.conn == nullptr && !spare.quit) {
        if (spare.cv.wait_until(lk, until) != std::cv_status::timeout) continue;
        if (spare.conn != nullptr || spare.quit) break;
        spares_.erase(std::find(spares_.begin(), spares_.end(), &spare));
        finished_.push_back(spare.tid);
        spare.quit = true;
    }
    if (spare.quit) { // begin_stopping_locked (or the timeout above) queued the join
        spare_free_.push_back(&spare);
        return nullptr;
    }
    return spare.conn;
}

// help_accept: a connection thread, between two requests, accepts one
// connection for the acceptor. Under many busy connections the acceptor
// is one thread among hundreds that all want the core, and the kernel's
// fair scheduler makes a thread that does the accept work for everyone
// wait its turn behind all of them (measured at 1,000 connections: ~170
// ms in the run queue per wake-up, connections queued for seconds:
// bench/concurrency.sh --trace). Spread over threads that run anyway, one accept
// each, the work waits for nobody. While accepts succeed every thread
// helps; after one finds the queue empty, none tries for kHelpInterval.
// Under max_connections a helper leaves room for the acceptor's own
// accept in flight, and the acceptor counts helpers in flight, so the cap
// holds exactly.
inline void Core::help_accept(TimePoint now) {
    if (now.time_since_epoch().count() < next_help_at_.load(std::memory_order_relaxed))
        return; // the common case: one relaxed load per request
    std::size_t others = helpers_.fetch_add(1); // seq_cst: pairs with the drain's wait
    int lfd = help_fd_.load();                  // -1 once stopping: the backlog is the drain's
    std::size_t cap = opt_.max_connections;
    bool room = cap == 0 || open_conns_.load() + others + 2 <= cap;
    int fd = lfd >= 0 && room ? accept_cloexec(lfd) : -1;
    if (fd >= 0) spawn(fd, false);
    else next_help_at_.store((now + kHelpInterval).time_since_epoch().count(), std::memory_order_relaxed);
    helpers_.fetch_sub(1);
    if (cap > 0) { // the acceptor may wait for helpers in flight (accept_loop)
        std::lock_guard<std::mutex> lk(mu_);
        cv_.notify_all();
    }
}

// ---- Core: routing ----

inline void Core::route(Request& req, Response& res) {
    const Route* found = nullptr;
    bool path_known = false; // some route has this path: 405, not 404
    std::vector<std::pair<std::string, std::string>>& params = req.match_; // reused
    for (const Route& r : routes_) {
        if (!match_route(r, req.path, params)) continue;
        path_known = true;
        bool exact = r.method == req.method;
        if (exact || (!found && req.method == "HEAD" && r.method == "GET")) {
            found = &r;
            req.params.swap(params); // both keep their capacity for the next request
            if (exact) break;
        }
    }
    Conn& c = *req.conn_; // the route's body limit (RouteOptions), unless
    if (found && found->max_body && req.body_state_ == 0) { // a middleware began the body
        c.body_limit = *found->max_body == 0 ? SIZE_MAX : *found->max_body;
        c.decoder = ChunkedDecoder(c.body_limit, opt_.max_header_bytes);
    }
    if (c.framing.body == BodyKind::length && c.framing.content_length > c.body_limit &&
        req.body_state_ == 0) {
        c.body_done = true; // 413 before the body is read (no 100 Continue), then close
        c.body_error = 413;
        req.body_state_ = 2;
        return;
    }
    bool options = req.method == "OPTIONS";
    if (found) {
        found->handler(req, res); // exceptions: serve_one's invoke_user
    } else if (path_known || req.path == "*") {
        // RFC 9110 §9.3.7: OPTIONS is answered by the router with the
        // methods the path has (for "*", the server has), unless a
        // handler takes OPTIONS; any other method gets 405 and the same.
        std::string allow; // built only here, never for a routed request
        auto add = [&](const std::string& m) {
            bool have = false;
            for_each_list_item(allow, [&](std::string_view item) { have = have || item == m; });
            if (have) return;
            if (!allow.empty()) allow += ", ";
            allow += m;
        };
        for (const Route& r : routes_) {
            if (req.path != "*" && !match_route(r, req.path, params)) continue;
            add(r.method);
            if (r.method == "GET") add("HEAD");
        }
        add("OPTIONS");
        res.status = options ? 204 : 405;
        res.set_header("Allow", allow);
        if (!options) error_page(405, req, res);
    } else if (not_found_) {
        res.status = 404;
        not_found_(req, res);
    } else {
        error_page(404, req, res);
    }
}

// ---- Conn: the connection state machine ----

// set_state is the one place a connection changes state.
inline void Conn::set_state(ConnState s) {
    if (announced && s == state) return;
    state = s;
    announced = true;
    if (core->on_conn_state_) core->on_conn_state_(id, s);
}

inline void Conn::run() {
    bool linger = false;
    while (wait_for_request()) {
        Next next = serve_one();
        if (state == ConnState::active && core->on_request_done_) log_request();
        if (next == Next::keep_alive) {
            core->help_accept(head_started_at); // cheap unless its turn came
            continue;
        }
        linger = next == Next::linger;
        break;
    }
    set_state(ConnState::closed);
    if (linger && !broken) lingering_close();
}

// wait_for_request waits for the first byte of the next request: on a
// fresh connection up to read_header_timeout, on an idle one up to
// idle_timeout. Once the server stops, idle connections close at once
// and fresh ones get drain_silent_timeout. False: close quietly.
inline bool Conn::wait_for_request() {
    set_state(requests == 0 ? ConnState::fresh : ConnState::idle);
    if (in.empty() && in.capacity() > 4 * 1024) std::string().swap(in); // idle: stay small
    if (!in.empty()) { // a pipelined request: its header clock starts now
        head_started_at = Clock::now();
        return true;
    }
    const Options& o = core->opt_;
    if (requests == 0 && !core->stopping()) {
        // Most clients send their request right after connecting: when it
        // is already here, one recv() replaces poll() + recv().
        Read r = read_more(no_deadline());
        bool spin_ok = core->open_conns_.load(std::memory_order_relaxed) < kSpinMaxConns;
        for (int spin = 0; spin_ok && r == Read::again && spin < kSpinTries; ++spin) {
            ::sched_yield(); // see kSpinTries
            r = read_more(no_deadline());
        }
        if (r == Read::data) {
            head_started_at = Clock::now();
            return true;
        }
        if (r != Read::again) return false;
    }
    if (requests > 0 && core->tcp_ && !core->stopping()) {
        Read r = idle_read();
        if (r == Read::data) {
            head_started_at = Clock::now();
            return true;
        }
        if (r == Read::eof && rd_shut) core->count_idle_closed(); // woken by the stop
        if (r != Read::again) return false; // EOF, idle_timeout, error
        // again: the stop began as we parked, or a signal: the loop below
    }
    TimePoint deadline = deadline_after(requests == 0 ? o.read_header_timeout : o.idle_timeout);
    bool silent_window = false;
    for (;;) {
        if (!silent_window && core->stopping()) {
            if (requests > 0) {
                // A request that already arrived is served (with close), not
                // reset by closing over it; otherwise close with a clean FIN.
                if (read_more(no_deadline()) == Read::data) {
                    head_started_at = Clock::now();
                    return true;
                }
                core->count_idle_closed();
                return false;
            }
            silent_window = true;
            TimePoint since = std::max(core->stop_began(), accepted_at);
            deadline = std::min(deadline, since + o.drain_silent_timeout);
        }
        Wait w = wait_fd(fd, POLLIN, deadline, silent_window ? -1 : core->stop_wake_fd());
        if (auto hook = idle_read_hook().load()) hook();
        if (w == Wait::woken) continue;
        if (w == Wait::timeout) {
            if (silent_window) core->count_silent_closed();
            return false;
        }
        if (w != Wait::ready) return false;
        Read r = read_more(no_deadline());
        if (r == Read::data) {
            head_started_at = Clock::now();
            return true;
        }
        if (r != Read::again) return false;
    }
}

// idle_read waits for the next request on a keep-alive TCP connection in
// recv() itself, on the blocking socket, bounded by SO_RCVTIMEO =
// idle_timeout: one system call per request instead of poll() + recv().
// The stopper wakes it by shutting the read side (begin_stopping_locked).
// again: the stop began before we blocked, or a signal interrupted us.
inline Conn::Read Conn::idle_read() {
    if (!rcvtimeo_set) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(core->opt_.idle_timeout);
        timeval tv{static_cast<time_t>(us.count() / 1000000),
                   static_cast<suseconds_t>(us.count() % 1000000)};
        if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return Read::again;
        rcvtimeo_set = true;
    }
    if (in.capacity() < 1024) in.reserve(1024);
    in.resize(in.capacity());
    idle_wait.store(1); // seq_cst: pairs with the phase store in begin_stopping_locked
    ssize_t n = -1;
    int err = EINTR;
    if (core->phase_.load() < Phase::stopping) { // seq_cst, not stopping()'s acquire
        n = ::recv(fd, &in[0], in.size(), 0);
        err = errno;
    }
    if (auto hook = idle_read_hook().load()) hook();
    if (idle_wait.exchange(0) == 2) rd_shut = true;
    in.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    if (n > 0) return Read::data;
    if (n == 0) return Read::eof;
    if (err == EAGAIN || err == EWOULDBLOCK) return Read::timeout;
    return err == EINTR ? Read::again : Read::error;
}

// wait_readable waits for input until `deadline`; once our read side is
// shut, poll() would report it readable forever, so nap instead.
inline Wait Conn::wait_readable(TimePoint deadline) {
    return rd_shut ? nap(deadline) : wait_fd(fd, POLLIN, deadline);
}

// read_more appends what the socket has (waiting until `deadline`).
// It reads straight into `in` (no stack buffer: an idle connection's
// thread keeps every stack page it ever touched resident).
inline Conn::Read Conn::read_more(TimePoint deadline, std::size_t want) {
    return read_into(in, deadline, want, false);
}

// read_into appends to `buf`: whatever the socket has, at least room for
// `want` bytes, or with `exact` at most `want` bytes (a body read straight
// into its string must not swallow the next pipelined request).
inline Conn::Read Conn::read_into(std::string& buf, TimePoint deadline, std::size_t want, bool exact) {
    for (;;) {
        std::size_t old = buf.size();
        std::size_t room = exact ? want : std::max(buf.capacity() - old, want);
        if (!exact && room < 256) room = old < 16 * 1024 ? 1024 : 16 * 1024;
        buf.resize(old + room);
        ssize_t n = ::recv(fd, &buf[old], room, MSG_DONTWAIT);
        buf.resize(old + static_cast<std::size_t>(n > 0 ? n : 0));
        if (n > 0) return Read::data;
        if (n == 0) {
            // With our read side shut, 0 may just mean "nothing yet".
            if (!rd_shut || peer_done(fd)) return Read::eof;
        } else if (errno == EINTR) {
            continue;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return Read::error;
        }
        if (deadline == no_deadline() && state != ConnState::active) return Read::again;
        Wait w = wait_readable(deadline);
        if (w == Wait::timeout) return Read::timeout;
        if (w != Wait::ready) return Read::error;
    }
}

// read_head reads until a complete head is parsed, a parse error, or
// read_header_timeout (then 408). False: the client vanished.
inline bool Conn::read_head(RequestHead& head, ParseResult& pr) {
    HeadLimits limits{core->opt_.max_request_line_bytes, core->opt_.max_header_bytes};
    TimePoint deadline = (requests == 0 ? accepted_at : head_started_at) +
                         core->opt_.read_header_timeout;
    for (;;) {
        pr = parse_request_head(in, limits, head);
        if (pr.status != ParseStatus::incomplete) return true;
        Read r = read_more(deadline);
        if (r == Read::timeout) {
            pr = parse_error(408);
            return true;
        }
        if (r != Read::data) return false;
    }
}

// parse_target splits the request target into path and query (RFC 9112
// §3.2: origin-form, absolute-form, asterisk-form). False: 400.
inline bool parse_target(std::string_view target, std::string_view method, Request& req) {
    constexpr auto npos = std::string_view::npos;
    req.query.clear();
    if (target == "*") {
        if (method != "OPTIONS") return false;
        req.path = "*";
        return true;
    }
    std::string_view path = target;
    if (target.front() != '/') { // absolute-form: scheme://authority[/path][?query]
        std::size_t scheme_end = target.find("://");
        if (scheme_end == npos || scheme_end == 0) return false;
        std::size_t start = target.find_first_of("/?", scheme_end + 3);
        if (start == npos) {
            req.path = "/";
            return true;
        }
        path = target.substr(start);
        if (path.front() == '?') {
            req.query.assign(path.substr(1));
            req.path = "/";
            return true;
        }
    }
    std::size_t q = path.find('?');
    if (q != npos) req.query.assign(path.substr(q + 1));
    return percent_decode(path.substr(0, q), req.path, false);
}

inline Conn::Next Conn::serve_one() {
    RequestHead& head = head_; // reused: no allocation per request once warm
    ParseResult pr;
    if (!read_head(head, pr)) return Next::drop;
    set_state(ConnState::active);
    if (pr.status == ParseStatus::error) {
        req_.reset(); // the hooks see an empty Request, not the last one,
        detail::resize_fields(req_.headers, req_.spare_, 0); // keeping capacity
        send_error(pr.http_status);
        return Next::linger;
    }
    core->request_started();
    ++requests;
    framing = frame_request(head, SIZE_MAX); // the route's limit applies (Core::route)
    head_only = head.method == "HEAD";
    req_minor = head.version_minor;
    continue_sent = false;
    body_done = framing.body == BodyKind::none;
    body_error = 0;
    body_left = framing.content_length;
    body_limit = core->opt_.max_body_bytes; // until routing picks the route's (middleware)
    decoder = ChunkedDecoder(core->opt_.max_body_bytes, core->opt_.max_header_bytes);
    stream = Stream::none;
    close_after = false;
    closed_for_shutdown = false;

    Request& req = req_; // reused, keeping its strings' capacity
    req.reset();
    req.method.assign(head.method);
    req.target.assign(head.target);
    req.version_minor = head.version_minor;
    detail::resize_fields(req.headers, req.spare_, head.fields.size());
    for (std::size_t i = 0; i < head.fields.size(); ++i) {
        req.headers[i].name.assign(head.fields[i].name);
        req.headers[i].value.assign(head.fields[i].value);
    }
    bool target_ok = parse_target(head.target, head.method, req);
    in.erase(0, pr.head_bytes); // the views in `head` are dead from here
    bool first_from_backlog = from_backlog && requests == 1;

    if (framing.error_status != 0 || !target_ok) {
        body_done = true; // never read a body we rejected: close instead
        send_error(framing.error_status != 0 ? framing.error_status : 400);
        core->request_finished(closed_for_shutdown, first_from_backlog);
        return broken ? Next::drop : Next::linger;
    }
    req.conn_ = this;
    Response& res = res_; // reused, like req
    res.reset();
    res.conn_ = this;
    bool handler_ok = invoke_user([&] { core->run_chain(0, req, res); });
    Next next = finish_response(req, res, handler_ok);
    core->request_finished(closed_for_shutdown, first_from_backlog);
    return next;
}

// finish_response sends what the handler produced (or the error that
// replaces it) and decides whether the connection lives on.
inline Conn::Next Conn::finish_response(const Request& req, Response& res, bool handler_ok) {
    if (res.taken_over_) return Next::drop; // the handler owned the socket: just close
    if (!handler_ok && res.streaming_) return Next::drop; // body cut short: close now
    if (!handler_ok || (req.body_state_ == 2 && !res.streaming_)) {
        if (broken) return Next::drop;
        int status = handler_ok ? (body_error != 0 ? body_error : 400) : 500;
        res.reset();
        res.conn_ = this;
        core->error_page(status, req, res);
        close_after = true;
    }
    if (req.body_state_ == 2) close_after = true; // the body's rest is unread (streamed too)
    if (!body_done) { // the handler did not read the body
        // With 100-continue unanswered the body may never come: close.
        bool never_sent = framing.expect_continue && !continue_sent;
        if (never_sent || !discard_body()) close_after = true;
    }
    if (broken) return Next::drop;
    bool ok = res.streaming_ ? end_stream() : send_response(res);
    if (!ok || broken) return Next::drop;
    if (!close_after) return Next::keep_alive;
    // SHUTDOWN.md #12: linger only when input may be unread: bytes already
    // buffered or in the socket, or a keep-alive client that did not ask
    // for the close (it may have sent its next request already).
    int pending = 0;
    bool unread = !in.empty() || !body_done || closed_for_shutdown ||
                  (::ioctl(fd, FIONREAD, &pending) == 0 && pending > 0);
    return unread ? Next::linger : Next::drop;
}

inline bool Conn::discard_body() {
    if (framing.body == BodyKind::length && body_left > kMaxDiscard) return false;
    return read_body(nullptr, kMaxDiscard);
}

// read_body reads the rest of the request body into `out` (or discards
// it when null), at most `limit` bytes, within read_timeout.
inline bool Conn::read_body(std::string* out_body, std::size_t limit, const Sink* sink) {
    if (body_done) return body_error == 0;
    if (framing.body == BodyKind::length && framing.content_length > limit) {
        body_done = true; // 413 before a byte is read (no 100 Continue); Core::route
        body_error = 413; // checks it too, for a handler that never reads
        return false;
    }
    if (sink) out_body = &piece;
    auto deliver = [&] { // hands a piece to the sink; false: it wants no more
        bool more = !sink || out_body->empty() || (*sink)(*out_body);
        if (sink) out_body->clear();
        return more;
    };
    auto stop = [&](bool complete) { body_done = complete; return false; }; // the sink said no
    if (framing.expect_continue && !continue_sent) {
        continue_sent = true; // RFC 9110 §10.1.1: only once the body is wanted
        static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        iovec iov{const_cast<char*>(kContinue), sizeof kContinue - 1};
        if (!send_all(fd, &iov, 1, deadline_after(core->opt_.write_timeout))) {
            broken = true;
            body_done = true;
            body_error = 400;
            return false;
        }
    }
    if (out_body && !sink && framing.body == BodyKind::length && body_left <= kReserveBytes) {
        // One buffer of the exact size (a bigger body grows as it arrives:
        // a client's Content-Length alone never reserves much).
        std::size_t need = out_body->size() + static_cast<std::size_t>(body_left);
        if (need > out_body->capacity()) out_body->reserve(need);
    }
    TimePoint deadline = deadline_after(core->opt_.read_timeout);
    for (;;) {
        if (!in.empty()) {
            if (framing.body == BodyKind::length) {
                std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(body_left, in.size()));
                if (out_body) out_body->append(in, 0, n);
                in.erase(0, n);
                body_left -= n;
                if (!deliver()) return stop(body_left == 0);
                if (body_left == 0) break;
            } else {
                ChunkedDecoder::Result r = decoder.feed(in, out_body);
                in.erase(0, r.consumed);
                if (r.status != ChunkedDecoder::Status::error && !deliver())
                    return stop(r.status == ChunkedDecoder::Status::done);
                if (r.status == ChunkedDecoder::Status::done) break;
                if (r.status == ChunkedDecoder::Status::error) {
                    body_done = true;
                    body_error = r.http_status;
                    return false;
                }
                if (decoder.total() > limit) {
                    body_done = true;
                    body_error = 413;
                    return false;
                }
            }
            if (!in.empty()) continue;
        }
        std::size_t want = framing.body == BodyKind::length
                               ? static_cast<std::size_t>(std::min<std::uint64_t>(body_left, 64 * 1024))
                               : 16 * 1024;
        Read r;
        if (framing.body == BodyKind::length && out_body != nullptr) {
            // Straight into the body: no copy through `in`, and `in` stays small.
            std::size_t before = out_body->size();
            r = read_into(*out_body, deadline, want, true);
            body_left -= out_body->size() - before;
            if (r == Read::data && !deliver()) return stop(body_left == 0);
            if (r == Read::data && body_left == 0) break;
        } else {
            r = read_more(deadline, want);
        }
        if (r == Read::data) continue;
        body_done = true;
        body_error = r == Read::timeout ? 408 : 400;
        if (r != Read::timeout) broken = true; // the client is gone
        return false;
    }
    body_done = true;
    return true;
}

// decide_close fixes Connection: close for the response about to go out.
inline void Conn::decide_close() {
    if (core->shutting_down_.load(std::memory_order_acquire) && !close_after &&
        framing.keep_alive) {
        closed_for_shutdown = true; // SHUTDOWN.md #8
    }
    if (closed_for_shutdown || !framing.keep_alive) close_after = true;
}

inline bool status_has_body(int status) {
    return !(status < 200 || status == 204 || status == 304);
}

// build_head serialises the status line and fields into out_. A user's
// Connection, Transfer-Encoding and Date are replaced by ours; fields
// with CR, LF or NUL are dropped (no response splitting).
inline void Conn::build_head(const Response& res, Body mode) {
    out.clear();
    int status = (res.status >= 100 && res.status <= 999) ? res.status : 500;
    status_sent = status;
    // The hot path: plain appends, no printf-style formatting.
    char code[4] = {static_cast<char>('0' + status / 100), static_cast<char>('0' + status / 10 % 10),
                    static_cast<char>('0' + status % 10), ' '};
    out += "HTTP/1.1 ";
    out.append(code, 4);
    out += reason_phrase(status);
    out += "\r\n";
    bool user_length = false;
    for (const Header& h : res.headers) {
        if (h.name.find_first_of("\r\n:") != std::string::npos || h.name.empty() ||
            h.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
            continue;
        if (iequals(h.name, "date")) continue;
        if (mode != Body::none &&
            (iequals(h.name, "connection") || iequals(h.name, "transfer-encoding")))
            continue;
        if (iequals(h.name, "content-length") && mode != Body::none) {
            if (mode != Body::stream || !status_has_body(status)) continue;
            std::uint64_t len = 0;
            if (!parse_content_length(h.value, len)) continue;
            user_length = true;
            stream_left = len;
        }
        out += h.name;
        out += ": ";
        out += h.value;
        out += "\r\n";
    }
    out += "Date: ";
    out += http_date();
    out += "\r\n";
    if (mode == Body::none) { // taken over: the handler owns framing and Connection
        out += "\r\n";
        return;
    }
    if (status_has_body(status)) {
        if (mode == Body::whole) {
            char digits[24];
            auto conv = std::to_chars(digits, digits + sizeof digits, res.body.size());
            out += "Content-Length: ";
            out.append(digits, static_cast<std::size_t>(conv.ptr - digits));
            out += "\r\n";
        } else if (user_length) {
            stream = Stream::fixed;
        } else if (req_minor >= 1) {
            stream = Stream::chunked;
            out += "Transfer-Encoding: chunked\r\n";
        } else {
            stream = Stream::until_close; // HTTP/1.0: the body ends at close
            close_after = true;
        }
    }
    decide_close();
    if (close_after) out += "Connection: close\r\n";
    else if (req_minor == 0) out += "Connection: keep-alive\r\n";
    out += "\r\n";
}

inline bool Conn::send_response(const Response& res) {
    build_head(res, Body::whole);
    iovec iov[2] = {{&out[0], out.size()},
                    {const_cast<char*>(res.body.data()), res.body.size()}};
    int n = (head_only || !status_has_body(res.status) || res.body.empty()) ? 1 : 2;
    if (!send_all(fd, iov, n, deadline_after(core->opt_.write_timeout))) broken = true;
    else if (n == 2) body_sent += res.body.size();
    return !broken;
}

inline void Conn::send_error(int status) {
    framing.keep_alive = false;
    head_only = false;
    Response res;
    core->error_page(status, req_, res);
    close_after = true;
    send_response(res);
}

inline bool Conn::begin_stream(Response& res) {
    if (res.streaming_) return !res.stream_failed_;
    res.streaming_ = true;
    build_head(res, Body::stream);
    iovec iov{&out[0], out.size()};
    if (!send_all(fd, &iov, 1, deadline_after(core->opt_.write_timeout))) broken = true;
    res.stream_failed_ = broken;
    return !broken;
}

inline Response::TakenOver Conn::take_over(Response& res) {
    Response::TakenOver t;
    if (res.streaming_ || res.taken_over_) return t;
    res.taken_over_ = true;
    build_head(res, Body::none);
    iovec iov{&out[0], out.size()};
    if (!send_all(fd, &iov, 1, deadline_after(core->opt_.write_timeout))) broken = true;
    if (broken) return t;
    int flags = ::fcntl(fd, F_GETFL); // documented as non-blocking
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    t.fd = fd;
    t.buffered.swap(in);
    return t;
}

inline bool Conn::write_stream(std::string_view data) {
    if (broken) return false;
    if (head_only || data.empty() || stream == Stream::none) return true; // HEAD, 1xx, 204, 304
    TimePoint deadline = deadline_after(core->opt_.write_timeout);
    if (stream == Stream::chunked) {
        char size[24];
        int len = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
        iovec iov[3] = {{size, static_cast<std::size_t>(len)},
                        {const_cast<char*>(data.data()), data.size()},
                        {const_cast<char*>("\r\n"), 2}};
        if (!send_all(fd, iov, 3, deadline)) broken = true;
        else body_sent += data.size();
        return !broken;
    }
    std::size_t n = data.size();
    if (stream == Stream::fixed) n = static_cast<std::size_t>(std::min<std::uint64_t>(n, stream_left));
    iovec iov{const_cast<char*>(data.data()), n};
    if (n > 0 && !send_all(fd, &iov, 1, deadline)) broken = true;
    else body_sent += n;
    if (stream == Stream::fixed) stream_left -= n;
    return !broken && n == data.size();
}

inline bool Conn::end_stream() {
    if (broken) return false;
    if (stream == Stream::chunked && !head_only) {
        iovec iov{const_cast<char*>("0\r\n\r\n"), 5};
        if (!send_all(fd, &iov, 1, deadline_after(core->opt_.write_timeout))) broken = true;
    } else if (stream == Stream::fixed && stream_left > 0 && !head_only) {
        close_after = true; // the handler wrote less than it announced
    }
    return !broken;
}

// lingering_close (SHUTDOWN.md #12): half-close, then read and discard
// until the client's EOF or linger_timeout, so input the client already
// sent does not make the kernel answer with a reset that could destroy
// the response still in the client's receive buffer.
inline void Conn::lingering_close() {
    ::shutdown(fd, SHUT_WR);
    TimePoint deadline = Clock::now() + core->opt_.linger_timeout;
    char buf[512];
    while (wait_readable(deadline) == Wait::ready) {
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 && (!rd_shut || peer_done(fd))) break;
        if (n < 0 && errno != EINTR && errno != EAGAIN) break;
    }
}

// ---- serve_until_signal's plumbing ----

inline std::atomic<int>& signal_pipe() {
    static std::atomic<int> fd{-1};
    return fd;
}

// The signal handler: one write to a pipe, which is async-signal-safe.
inline void on_stop_signal(int sig) {
    int saved = errno;
    int fd = signal_pipe().load();
    if (fd >= 0) {
        char c = static_cast<char>(sig);
        ssize_t n = ::write(fd, &c, 1);
        (void)n;
    }
    errno = saved;
}

} // namespace detail

// ---- Request ----

inline void Request::reset() {
    method.clear();
    target.clear();
    path.clear();
    query.clear();
    version_minor = 1;
    params.clear();
    conn_ = nullptr;
    detail::clear_keeping(body_);
    body_state_ = 0;
}

inline std::string_view Request::header(std::string_view name) const {
    for (const Header& h : headers)
        if (detail::iequals(h.name, name)) return h.value;
    return {};
}

inline bool Request::has_header(std::string_view name) const {
    for (const Header& h : headers)
        if (detail::iequals(h.name, name)) return true;
    return false;
}

inline std::string Request::query_param(std::string_view name) const {
    std::string_view q = query;
    std::string key, value;
    while (!q.empty()) {
        std::size_t amp = q.find('&');
        std::string_view pair = q.substr(0, amp);
        std::size_t eq = pair.find('=');
        if (detail::percent_decode(pair.substr(0, eq), key, true) && key == name) {
            if (eq == std::string_view::npos) return {};
            if (detail::percent_decode(pair.substr(eq + 1), value, true)) return value;
            return {};
        }
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
    return {};
}

inline std::string_view Request::param(std::string_view name) const {
    for (const auto& p : params)
        if (p.first == name) return p.second;
    return {};
}

inline const std::string& Request::body() const {
    if (body_state_ == 0) {
        bool ok = conn_ == nullptr || conn_->read_body(&body_, conn_->body_limit);
        body_state_ = ok ? 1 : 2;
        if (!ok) body_.clear();
    }
    return body_;
}

inline bool Request::body_ok() const {
    (void)body();
    return body_state_ == 1;
}

inline bool Request::read_body(const std::function<bool(std::string_view)>& on_data) const {
    if (body_state_ == 1) return body_.empty() || on_data(body_); // body() read it
    if (body_state_ != 0 || conn_ == nullptr) return body_state_ == 0;
    bool ok = conn_->read_body(nullptr, conn_->body_limit, &on_data);
    body_state_ = ok || conn_->body_error == 0 ? 3 : 2;
    std::string().swap(conn_->piece); // an idle connection stays small
    return ok;
}

inline int Request::body_error() const {
    return body_state_ != 2 ? 0 : (conn_ && conn_->body_error ? conn_->body_error : 400);
}

inline bool Request::shutdown_requested() const {
    return conn_ != nullptr && conn_->core->shutting_down_.load(std::memory_order_acquire);
}

inline bool Request::wait_for_shutdown(Duration timeout) const {
    return conn_ != nullptr && conn_->core->wait_shutdown_for(timeout);
}

inline bool Request::cancelled() const {
    return conn_ != nullptr && conn_->cancelled.load(std::memory_order_acquire);
}

inline bool Request::wait_for_cancel(Duration timeout) const {
    return conn_ != nullptr && conn_->core->wait_cancel_for(*conn_, timeout);
}

// ---- Response ----

inline void Response::set_header(std::string_view name, std::string_view value) {
    auto kept = std::remove_if(headers.begin(), headers.end(),
                               [&](const Header& h) { return detail::iequals(h.name, name); });
    // One slot past the kept fields: a removed one, or one from spare_.
    detail::resize_fields(headers, spare_, static_cast<std::size_t>(kept - headers.begin()) + 1);
    headers.back().name.assign(name);
    headers.back().value.assign(value);
}

// reset readies a connection's Response for its next request. The fields
// go to spare_ for set_header to refill, and the body keeps its buffer up
// to kKeepBytes, so a warm connection answers without allocating.
inline void Response::reset() {
    status = 200;
    detail::resize_fields(headers, spare_, 0);
    detail::clear_keeping(body);
    conn_ = nullptr;
    streaming_ = false;
    taken_over_ = false;
    stream_failed_ = false;
}

inline void Response::text(std::string_view body_text, std::string_view content_type) {
    body.assign(body_text);
    set_header("Content-Type", content_type);
}

inline bool Response::begin_stream() {
    return conn_ != nullptr && conn_->begin_stream(*this);
}

inline Response::TakenOver Response::take_over() {
    return conn_ != nullptr ? conn_->take_over(*this) : TakenOver();
}

inline bool Response::write(std::string_view data) {
    if (conn_ == nullptr || !begin_stream()) return false;
    bool ok = conn_->write_stream(data);
    if (!ok) stream_failed_ = true;
    return ok;
}

// ---- Server ----

inline Server::Server(Options options) : core_(std::make_shared<detail::Core>(options)) {}

inline Server::~Server() {
    core_->close();
    core_->wait_serve_returned();
}

inline void Server::handle(std::string_view method, std::string_view pattern, Handler h,
                           RouteOptions ro) {
    detail::Route r;
    r.method = std::string(method);
    r.max_body = ro.max_body_bytes;
    r.segments = detail::split_path(pattern);
    if (pattern == "*") r.segments = {"*"};
    r.handler = std::move(h);
    core_->routes_.push_back(std::move(r));
}

inline void Server::not_found(Handler h) { core_->not_found_ = std::move(h); }

inline Error Server::listen(const std::string& host, int port) { return core_->listen(host, port); }

inline Error Server::listen_unix(const std::string& path) { return core_->listen_unix(path); }

inline Error Server::listen_fd(int fd) { return core_->listen_fd(fd); }

inline int Server::listener_fd() { return core_->listener_fd(); }

inline void Server::on_shutdown(std::function<void()> f) {
    core_->on_shutdown_.push_back(std::move(f));
}

inline void Server::on_conn_state(std::function<void(std::uint64_t, ConnState)> f) {
    core_->on_conn_state_ = std::move(f);
}

inline int Server::port() const { return core_->port_.load(); }

inline std::string Server::url() const {
    if (!core_->unix_path_.empty()) return "unix:" + core_->unix_path_;
    return "http://" + detail::host_port(core_->host_, port());
}

inline Error Server::serve() { return core_->serve(); }

inline ShutdownReport Server::shutdown(Duration timeout) { return core_->shutdown(timeout); }

inline void Server::close() { core_->close(); }

inline bool Server::is_shutting_down() const { return core_->shutting_down_.load(); }

inline bool Server::is_draining() const {
    return core_->phase_.load() == detail::Phase::draining;
}

inline Stats Server::stats() const { return core_->stats(); }

// ---- Process helpers: sd_notify, socket activation, handoff ----

namespace detail {

inline bool env_number(const char* name, unsigned long long& out) {
    const char* v = std::getenv(name); // NOLINT(concurrency-mt-unsafe): read at startup
    if (v == nullptr || *v == '\0') return false;
    char* end = nullptr;
    errno = 0;
    out = std::strtoull(v, &end, 10);
    return errno == 0 && end != nullptr && *end == '\0';
}

// The fd of the readiness pipe a predecessor passed (start_successor).
constexpr const char* kReadyFdEnv = "GRACEFUL_HTTP_READY_FD";

} // namespace detail

inline bool sd_notify(std::string_view state) {
    const char* path = std::getenv("NOTIFY_SOCKET"); // NOLINT(concurrency-mt-unsafe)
    if (path == nullptr || path[0] == '\0') return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::size_t n = std::strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof addr.sun_path) return false;
    std::memcpy(addr.sun_path, path, n);
    if (path[0] == '@') addr.sun_path[0] = '\0'; // abstract: no trailing NUL counted
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n + (path[0] == '/'));
    int fd = detail::socket_cloexec(AF_UNIX, SOCK_DGRAM, false);
    if (fd < 0) return false;
    iovec iov{const_cast<char*>(state.data()), state.size()};
    msghdr msg{};
    msg.msg_name = &addr;
    msg.msg_namelen = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t sent = detail::no_sigpipe_send(fd, &msg, 0);
    ::close(fd);
    return sent == static_cast<ssize_t>(state.size());
}

inline void notify_ready() {
    sd_notify("READY=1");
    unsigned long long fd = 0;
    if (detail::env_number(detail::kReadyFdEnv, fd) && fd > 2 && fd < 65536) {
        int f = static_cast<int>(fd);
        ssize_t n = ::write(f, "READY=1\n", 8);
        (void)n;
        ::close(f);
        ::unsetenv(detail::kReadyFdEnv); // NOLINT(concurrency-mt-unsafe): documented
    }
}

inline std::vector<InheritedListener> inherited_listeners() {
    std::vector<InheritedListener> out;
    unsigned long long pid = 0, count = 0;
    bool ours = detail::env_number("LISTEN_PID", pid) &&
                pid == static_cast<unsigned long long>(::getpid()) &&
                detail::env_number("LISTEN_FDS", count) && count < 1024;
    const char* names = std::getenv("LISTEN_FDNAMES"); // NOLINT(concurrency-mt-unsafe)
    std::string_view rest = names ? names : "";
    for (unsigned long long i = 0; ours && i < count; ++i) {
        InheritedListener l;
        l.fd = static_cast<int>(3 + i);
        std::size_t colon = rest.find(':');
        l.name = std::string(rest.substr(0, colon));
        if (l.name.empty()) l.name = "unknown";
        rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
        ::fcntl(l.fd, F_SETFD, FD_CLOEXEC);
        out.push_back(l);
    }
    // Not thread-safe, as the function's comment says: call it at startup.
    ::unsetenv("LISTEN_PID");     // NOLINT(concurrency-mt-unsafe)
    ::unsetenv("LISTEN_FDS");     // NOLINT(concurrency-mt-unsafe)
    ::unsetenv("LISTEN_FDNAMES"); // NOLINT(concurrency-mt-unsafe)
    return out;
}

inline Error start_successor(const std::vector<std::string>& argv,
                             const std::vector<InheritedListener>& listeners,
                             Duration ready_timeout, int* pid_out) {
    auto fail = [](const std::string& what, int err) {
        return detail::sys_error("start_successor: " + what, err);
    };
    if (argv.empty())
        return Error(std::make_error_code(std::errc::invalid_argument), "start_successor: empty argv");
    int ready[2];
    if (!detail::make_pipe(ready, false)) return fail("pipe", errno);
    // Everything the child needs is built before fork(): after it, only
    // async-signal-safe calls (the parent has threads).
    const std::size_t n = listeners.size();
    std::vector<std::string> env;
    for (char** e = detail::process_environ(); *e != nullptr; ++e) {
        std::string_view v(*e);
        if (v.rfind("LISTEN_", 0) == 0 || v.rfind(detail::kReadyFdEnv, 0) == 0) continue;
        env.emplace_back(v);
    }
    std::string names = "LISTEN_FDNAMES=";
    for (std::size_t i = 0; i < n; ++i) names += (i ? ":" : "") + listeners[i].name;
    env.push_back("LISTEN_FDS=" + std::to_string(n));
    env.push_back(names);
    env.push_back(std::string(detail::kReadyFdEnv) + "=" + std::to_string(3 + n));
    env.push_back("LISTEN_PID=0000000000"); // the child writes its pid here
    std::vector<char*> envp, args;
    for (std::string& e : env) envp.push_back(&e[0]);
    envp.push_back(nullptr);
    char* pid_digits = envp[envp.size() - 2] + std::strlen("LISTEN_PID=");
    std::vector<std::string> argv_copy = argv;
    for (std::string& a : argv_copy) args.push_back(&a[0]);
    args.push_back(nullptr);
    std::vector<int> sources;
    sources.reserve(n + 1);
    for (const InheritedListener& l : listeners) sources.push_back(l.fd);
    sources.push_back(ready[1]);

    pid_t pid = ::fork();
    if (pid < 0) {
        int err = errno;
        ::close(ready[0]);
        ::close(ready[1]);
        return fail("fork", err);
    }
    if (pid == 0) { // child: move the fds to 3.., write LISTEN_PID, exec
        int base = static_cast<int>(3 + sources.size());
        for (int& fd : sources) fd = ::fcntl(fd, F_DUPFD_CLOEXEC, base);
        for (std::size_t i = 0; i < sources.size(); ++i)
            if (sources[i] < 0 || ::dup2(sources[i], static_cast<int>(3 + i)) < 0) ::_exit(126);
        unsigned long v = static_cast<unsigned long>(::getpid());
        for (int i = 9; i >= 0; --i, v /= 10) pid_digits[i] = static_cast<char>('0' + v % 10);
        char* p = pid_digits; // strip leading zeros (systemd parses it as a number anyway)
        while (*p == '0' && p[1] != '\0') ++p;
        std::memmove(pid_digits, p, std::strlen(p) + 1);
        ::execve(args[0], args.data(), envp.data());
        ::_exit(127);
    }
    ::close(ready[1]);
    if (pid_out) *pid_out = pid;
    char buf[16];
    ssize_t got = 0;
    if (detail::wait_fd(ready[0], POLLIN, detail::Clock::now() + ready_timeout) ==
        detail::Wait::ready)
        got = ::read(ready[0], buf, sizeof buf);
    ::close(ready[0]);
    if (got > 0) return Error();
    ::kill(pid, SIGKILL); // abandon it: never ready, or it died
    int status = 0;
    ::waitpid(pid, &status, 0);
    return Error(std::make_error_code(std::errc::timed_out),
                 got == 0 && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
                     ? "start_successor: " + argv[0] + " exited before it was ready"
                     : "start_successor: " + argv[0] + " was not ready in time");
}

// ---- run_until_signal ----

namespace detail {

// SignalScope installs the self-pipe handlers for the given signals and
// restores the previous ones (and the signal mask) when it ends.
class SignalScope {
public:
    SignalScope(std::initializer_list<int> sigs, int pipe_wr) : sigs_(sigs) {
        signal_pipe() = pipe_wr;
        struct sigaction sa {};
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigset_t set;
        sigemptyset(&set);
        for (std::size_t i = 0; i < sigs_.size(); ++i) {
            ::sigaction(sigs_[i], &sa, &old_[i]);
            sigaddset(&set, sigs_[i]);
        }
        ::pthread_sigmask(SIG_UNBLOCK, &set, &old_mask_); // make sure we hear them
    }
    ~SignalScope() {
        ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
        for (std::size_t i = 0; i < sigs_.size(); ++i) ::sigaction(sigs_[i], &old_[i], nullptr);
        signal_pipe() = -1;
    }
    SignalScope(const SignalScope&) = delete;
    SignalScope& operator=(const SignalScope&) = delete;

private:
    std::vector<int> sigs_;
    struct sigaction old_[3] {};
    sigset_t old_mask_{};
};

} // namespace detail

inline GroupReport run_until_signal(const std::vector<Server*>& servers, const RunOptions& opt) {
    using detail::Clock;
    GroupReport out;
    out.reports.resize(servers.size());
    int sig_pipe[2], done_pipe[2];
    if (!detail::make_pipe(sig_pipe, true)) {
        out.error = detail::sys_error("run_until_signal: pipe", errno);
        return out;
    }
    if (!detail::make_pipe(done_pipe, true)) {
        out.error = detail::sys_error("run_until_signal: pipe", errno);
        ::close(sig_pipe[0]);
        ::close(sig_pipe[1]);
        return out;
    }
    {
        detail::SignalScope scope = opt.on_reload
                                        ? detail::SignalScope({SIGINT, SIGTERM, SIGHUP}, sig_pipe[1])
                                        : detail::SignalScope({SIGINT, SIGTERM}, sig_pipe[1]);
        std::vector<Error> errors(servers.size());
        std::vector<std::thread> serving, draining;
        for (std::size_t i = 0; i < servers.size(); ++i)
            serving.emplace_back([&, i] {
                errors[i] = servers[i]->serve();
                char c = 1;
                ssize_t n = ::write(done_pipe[1], &c, 1);
                (void)n;
            });
        for (Server* s : servers) s->core_->wait_until_serving();
        if (opt.notify) notify_ready();

        auto start_drain = [&] {
            if (!draining.empty()) return;
            // After a reload the successor speaks for the service: no STOPPING.
            if (opt.notify && !out.reloaded) sd_notify("STOPPING=1");
            for (std::size_t i = 0; i < servers.size(); ++i)
                draining.emplace_back([&, i] { out.reports[i] = servers[i]->shutdown(opt.grace); });
        };
        unsigned long long watchdog_usec = 0;
        bool watchdog = opt.notify && detail::env_number("WATCHDOG_USEC", watchdog_usec) &&
                        watchdog_usec > 0;
        auto tick = std::chrono::milliseconds(1000);
        if (watchdog) tick = std::min(tick, std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::microseconds(watchdog_usec / 2)));
        if (watchdog) sd_notify("WATCHDOG=1"); // at once: no gap after a predecessor's last
        std::size_t returned = 0;
        int stop_signals = 0;
        while (returned < servers.size()) {
            pollfd p[2] = {{sig_pipe[0], POLLIN, 0}, {done_pipe[0], POLLIN, 0}};
            int timeout = (watchdog || !draining.empty()) ? static_cast<int>(tick.count()) : -1;
            int ready = ::poll(p, 2, timeout);
            if (ready < 0) continue; // EINTR
            if ((ready == 0 || watchdog) && !out.reloaded) {
                if (watchdog) sd_notify("WATCHDOG=1");
                if (!draining.empty() && opt.notify) sd_notify("EXTEND_TIMEOUT_USEC=3000000");
            }
            char buf[16];
            ssize_t n;
            while ((n = ::read(sig_pipe[0], buf, sizeof buf)) > 0) {
                for (ssize_t i = 0; i < n; ++i) {
                    if (buf[i] == SIGHUP) {
                        if (draining.empty() && opt.on_reload && opt.on_reload()) {
                            out.reloaded = true;
                            start_drain();
                        }
                    } else if (++stop_signals == 1) {
                        start_drain(); // no-op when a reload drain already runs
                    } else {
                        for (Server* s : servers) s->close(); // the second signal forces
                    }
                }
            }
            while ((n = ::read(done_pipe[0], buf, sizeof buf)) > 0) {
                returned += static_cast<std::size_t>(n);
                start_drain(); // one server stopped or failed: drain them all
            }
        }
        for (std::thread& t : serving) t.join();
        for (std::thread& t : draining) t.join();
        for (const Error& e : errors)
            if (e && e.code() != std::errc::operation_canceled && !out.error) out.error = e;
        for (std::size_t i = 0; i < servers.size(); ++i)
            if (errors[i] && errors[i].code() != std::errc::operation_canceled)
                out.reports[i] = ShutdownReport();
    }
    for (int fd : {sig_pipe[0], sig_pipe[1], done_pipe[0], done_pipe[1]}) ::close(fd);
    return out;
}

inline ShutdownReport serve_until_signal(Server& server, Duration grace) {
    RunOptions opt;
    opt.grace = grace;
    return run_until_signal({&server}, opt).reports[0];
}

// ---- Middleware, error pages, access log ----

inline void Server::use(Middleware m) { core_->middleware_.push_back(std::move(m)); }
inline void Server::on_error(ErrorHook h) { core_->on_error_ = std::move(h); }
inline void Server::on_request_done(RequestLogHook f) { core_->on_request_done_ = std::move(f); }

// run_chain: middleware i, whose next() runs i + 1 or the router (a one-pointer Next: no allocation).
inline void detail::Core::run_chain(std::size_t i, Request& req, Response& res) {
    if (i == middleware_.size()) return route(req, res);
    struct Frame { Core* core; Request* req; Response* res; std::size_t next; } f{this, &req, &res, i + 1};
    const Next next = [p = &f] { p->core->run_chain(p->next, *p->req, *p->res); };
    middleware_[i](req, res, next);
}

// error_page: the library's answer, as on_error rewrites it (socket hidden, status kept).
inline void detail::Core::error_page(int status, const Request& req, Response& res) {
    auto plain = [&] { res.text(std::to_string(status) + " " + reason_phrase(status) + "\n"); };
    plain();
    Conn* conn = std::exchange(res.conn_, nullptr);
    if (on_error_ && !invoke_user([&] { on_error_(status, req, res); })) plain();
    res.conn_ = conn;
    res.status = status;
}

inline void detail::Conn::log_request() {
    if (peer.empty()) peer = peer_address(fd);
    auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - head_started_at);
    RequestLog r{req_.method, req_.target, req_.header("User-Agent"), req_.header("Referer"), peer,
                 req_.version_minor, std::exchange(status_sent, 0), std::exchange(body_sent, 0), took,
                 std::chrono::system_clock::now() - took};
    invoke_user([&] { core->on_request_done_(r); }); // a throwing logger loses its line only
}

inline std::string format_common_log(const RequestLog& r) { return detail::format_log(r, false); }
inline std::string format_combined_log(const RequestLog& r) { return detail::format_log(r, true); }

// ---- Static files ----

// write_file: the socket is non-blocking for the call, so sendfile never
// blocks past write_timeout.
inline bool Response::write_file(int file_fd, std::uint64_t offset, std::uint64_t length) {
    using Stream = detail::Conn::Stream;
    if (conn_ == nullptr || !begin_stream() || stream_failed_ || conn_->broken) return false;
    detail::Conn& c = *conn_;
    if (c.head_only || length == 0 || c.stream == Stream::none) return true;
    if (c.stream == Stream::chunked) return false; // nothing sent: see the declaration
    bool whole = c.stream != Stream::fixed || length <= c.stream_left;
    length = whole ? length : c.stream_left;
    detail::TimePoint deadline = detail::deadline_after(c.core->opt_.write_timeout);
    int flags = ::fcntl(c.fd, F_GETFL);
    bool ok = flags >= 0 && ::fcntl(c.fd, F_SETFL, flags | O_NONBLOCK) == 0;
    for (std::uint64_t sent = 0; ok && sent < length;) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(length - sent, 1 << 30));
        ssize_t k = detail::send_file_part(c.fd, file_fd, offset + sent, n);
        if (k > 0) sent += static_cast<std::uint64_t>(k);
        else if (k == 0 || errno != EINTR) // an error, or the file shrank (0): framing lost
            ok = k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
                 detail::wait_fd(c.fd, POLLOUT, deadline) == detail::Wait::ready;
    }
    if (flags >= 0) ::fcntl(c.fd, F_SETFL, flags);
    if (c.stream == Stream::fixed) c.stream_left -= length;
    if (!ok) c.broken = stream_failed_ = true;
    return ok && whole;
}

namespace detail {

struct FdCloser { int fd; ~FdCloser() { close_fd(fd); } };

inline void status_text(Response& res, int status) {
    res.status = status;
    res.text(std::to_string(status) + " " + reason_phrase(status) + "\n");
}

// content_type_for: see FileServerOptions::content_types.
inline std::string content_type_for(std::string_view name, const FileServerOptions& options) {
    std::string ext(name.substr(std::min(name.rfind('.'), name.size() - 1) + 1));
    for (const auto& t : options.content_types)
        if (iequals(t.first, ext)) return t.second;
    for (char& c : ext) c = to_lower(c);
    constexpr std::string_view kTypes = // the usual web types; text/* ones in UTF-8
        " html:text/html htm:text/html css:text/css js:text/javascript mjs:text/javascript"
        " txt:text/plain md:text/markdown csv:text/csv json:application/json xml:application/xml"
        " svg:image/svg+xml png:image/png jpg:image/jpeg jpeg:image/jpeg gif:image/gif"
        " webp:image/webp ico:image/x-icon wasm:application/wasm pdf:application/pdf"
        " zip:application/zip gz:application/gzip mp4:video/mp4 woff2:font/woff2 ";
    std::size_t at = ext.empty() ? std::string::npos : kTypes.find(" " + ext + ":");
    if (at == std::string::npos) return "application/octet-stream";
    at += ext.size() + 2;
    std::string type(kTypes.substr(at, kTypes.find(' ', at) - at));
    return type.compare(0, 5, "text/") == 0 ? type + "; charset=utf-8" : type;
}

// precondition_status is 0 (go on), 304 or 412, in RFC 9110 §13.2.2's order.
inline int precondition_status(const Request& req, std::string_view etag, std::int64_t mtime) {
    std::int64_t t = 0;
    bool get = req.method == "GET" || req.method == "HEAD";
    if (req.has_header("If-Match") ? !etag_listed(req.header("If-Match"), etag, false)
                                   : parse_http_date(req.header("If-Unmodified-Since"), t) && mtime > t)
        return 412;
    if (req.has_header("If-None-Match") ? etag_listed(req.header("If-None-Match"), etag, true)
                                        : get && parse_http_date(req.header("If-Modified-Since"), t) &&
                                              mtime <= t)
        return get ? 304 : 412;
    return 0;
}

// serve_from_dir is serve_dir's handler: check the path (and %2F, %5C in
// the raw one), resolve it with its symlinks, keep it below root.
inline void serve_from_dir(const Request& req, Response& res, const std::string& root,
                           const FileServerOptions& o) {
    std::string_view raw = std::string_view(req.target).substr(0, req.target.find('?'));
    PathCheck pc = check_file_path(req.param("path"), o.dotfiles);
    for (std::size_t i = 0; i + 2 < raw.size(); ++i)
        if (raw[i] == '%' && to_lower(raw[i + 2]) == (raw[i + 1] == '2' ? 'f' : raw[i + 1] == '5' ? 'c' : 0))
            pc = PathCheck::bad;
    if (pc != PathCheck::ok) return status_text(res, pc == PathCheck::bad ? 400 : 404);
    auto real_path = [](const std::string& path) { // "" if it does not resolve
        char buf[PATH_MAX];
        return std::string(::realpath(path.c_str(), buf) != nullptr ? buf : "");
    };
    std::string base = real_path(root);
    base += base.empty() || base.back() == '/' ? "" : "/";
    auto resolve = [&](const std::string& rel) { // "" when outside root or hidden
        std::string real = real_path(base + rel);
        if (!real.empty() && real + "/" == base) return base; // the root itself
        bool in = !base.empty() && real.compare(0, base.size(), base) == 0 &&
                  check_file_path(std::string_view(real).substr(base.size()), o.dotfiles) == PathCheck::ok;
        return in ? real : std::string();
    };
    std::string real = resolve(std::string(req.param("path")));
    struct stat st{};
    if (!real.empty() && ::stat(real.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        if (req.path.back() != '/') { // 301 to the request's own path plus '/' (not a rebuilt
            std::size_t q = std::min(req.target.find('?'), req.target.size()); // "//dir/")
            res.set_header("Location", req.target.substr(0, q) + "/" + req.target.substr(q));
            return status_text(res, 301);
        }
        real = o.index.empty() ? std::string() : resolve(real.substr(base.size()) + "/" + o.index);
    }
    if (real.empty()) return status_text(res, 404);
    send_file(req, res, real, o);
}

} // namespace detail

// send_file: the whole file or one range is the body; several ranges are
// the parts of a multipart/byteranges body.
inline bool send_file(const Request& req, Response& res, const std::string& path,
                      const FileServerOptions& options) {
    using ull = unsigned long long;
    struct stat st{};
    detail::FdCloser f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)}; // a FIFO: no wait
    if (f.fd < 0 || ::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        detail::status_text(res, 404);
        return false;
    }
    const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    const std::int64_t mtime = static_cast<std::int64_t>(st.st_mtime);
    char etag[48], date[48], num[80];
    std::snprintf(etag, sizeof etag, "\"%llx-%llx\"", static_cast<ull>(size),
                  static_cast<ull>(detail::mtime_ns(st)));
    res.set_header("ETag", etag);
    res.set_header("Last-Modified", detail::format_http_date(mtime, date));
    res.set_header("Accept-Ranges", "bytes");
    detail::RangeSet rs;
    detail::RangeStatus rst = detail::RangeStatus::ignore;
    std::string_view if_range = detail::trim_ows(req.header("If-Range"));
    std::int64_t t = 0;
    if (req.has_header("Range") && (!req.has_header("If-Range") || if_range == etag ||
                                    (detail::parse_http_date(if_range, t) && t == mtime)))
        rst = detail::parse_range(req.header("Range"), size, rs);
    int pre = detail::precondition_status(req, etag, mtime);
    if (pre == 0 && rst == detail::RangeStatus::unsatisfiable) {
        std::snprintf(num, sizeof num, "bytes */%llu", static_cast<ull>(size));
        res.set_header("Content-Range", num);
        pre = 416;
    }
    if (pre == 304) res.status = 304; // no body
    else if (pre != 0) detail::status_text(res, pre);
    if (pre != 0) return true;
    if (rst == detail::RangeStatus::ignore) rs.ranges[rs.count++] = {0, size};
    const std::string type = detail::content_type_for(path, options);
    static std::atomic<std::uint64_t> seq{0};
    std::snprintf(num, sizeof num, "%016llx", static_cast<ull>(mtime) ^ (++seq * 0x9E3779B97F4A7C15ULL));
    const std::string boundary = num;
    std::vector<std::string> heads(rs.count + 1); // multipart: each part's head, then the end
    std::uint64_t length = 0;
    for (std::size_t i = 0; i < rs.count; ++i) {
        const detail::ByteRange& r = rs.ranges[i];
        std::snprintf(num, sizeof num, "bytes %llu-%llu/%llu", static_cast<ull>(r.first),
                      static_cast<ull>(r.first + r.length - 1), static_cast<ull>(size));
        if (rs.count > 1)
            heads[i].append(i ? "\r\n--" : "--").append(boundary).append("\r\nContent-Type: ")
                .append(type).append("\r\nContent-Range: ").append(num).append("\r\n\r\n");
        length += heads[i].size() + r.length;
    }
    if (rs.count > 1) heads.back() = "\r\n--" + boundary + "--\r\n";
    res.status = rst == detail::RangeStatus::ok ? 206 : 200;
    if (rst == detail::RangeStatus::ok && rs.count == 1) res.set_header("Content-Range", num);
    res.set_header("Content-Type", rs.count == 1 ? type : "multipart/byteranges; boundary=" + boundary);
    res.set_header("Content-Length", std::to_string(length + heads.back().size()));
    bool ok = res.begin_stream();
    for (std::size_t i = 0; ok && i < rs.count; ++i)
        ok = res.write(heads[i]) && res.write_file(f.fd, rs.ranges[i].first, rs.ranges[i].length);
    return ok && res.write(heads.back());
}

inline void Server::serve_dir(std::string_view prefix, const std::string& root,
                              const FileServerOptions& options) {
    std::string mount = std::string(prefix) + (prefix.empty() || prefix.back() != '/' ? "/" : "");
    if (mount.size() > 1) // "/files" -> "/files/"
        get(mount.substr(0, mount.size() - 1), [mount](const Request&, Response& res) {
            res.set_header("Location", mount);
            detail::status_text(res, 301);
        });
    get(mount + "{path...}", [root, options](const Request& req, Response& res) {
        detail::serve_from_dir(req, res, root, options);
    });
}

// ---- Forms ----

inline bool parse_urlencoded(std::string_view text, FormFields& out) {
    return out.clear(), detail::append_urlencoded(text, out);
}

inline FormResult read_form(const Request& req, FormFields& out) {
    FormResult r;
    bool body = detail::media_type_is(req.header("Content-Type"), "application/x-www-form-urlencoded");
    if (!parse_urlencoded(req.query, out) ||
        (body && (!req.body_ok() || !detail::append_urlencoded(req.body(), out))))
        r.http_status = req.body_error() != 0 ? req.body_error() : 400;
    return r;
}

inline FormResult read_multipart(const Request& req, const MultipartCallbacks& callbacks,
                                 const MultipartLimits& limits) {
    FormResult r;
    std::string boundary;
    r.http_status = detail::multipart_boundary(req.header("Content-Type"), boundary);
    if (r.http_status != 0) return r;
    detail::MultipartParser parser(boundary, limits, callbacks);
    bool read = req.read_body([&](std::string_view piece) { return (r = parser.feed(piece)).ok(); });
    if (req.body_error() != 0) r.http_status = req.body_error();
    return read ? parser.finish() : r;
}

} // namespace graceful_http

#endif // GRACEFUL_HTTP_HPP

// ---- Licence ----
// MIT License. Copyright (c) 2026 the graceful_http developers.
// Permission is hereby granted, free of charge, to any person obtaining a
// copy of this software and associated documentation files (the
// "Software"), to deal in the Software without restriction, including
// without limitation the rights to use, copy, modify, merge, publish,
// distribute, sublicense, and/or sell copies of the Software, and to
// permit persons to whom the Software is furnished to do so, subject to
// the following conditions: The above copyright notice and this
// permission notice shall be included in all copies or substantial
// portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT
// WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
