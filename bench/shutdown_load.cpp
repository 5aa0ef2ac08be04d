// shutdown_load: ambiguous failures while a server shuts down under load.
//
//   shutdown_load --name NAME [--cycles 50] [--warm-ms 300] [--threads 16]
//                 [--settle-ms 100] [--log FILE] -- SERVER_COMMAND...
//
// Each cycle starts SERVER_COMMAND (which must print `listening on
// http://127.0.0.1:PORT` and drain on SIGTERM, per the demo-server
// contract), runs --threads client threads against it (half open a new
// connection per request with `Connection: close`, half reuse keep-alive
// connections and reconnect when the server says close or hangs up),
// sends SIGTERM after --warm-ms, keeps the load running until the server
// has exited and --settle-ms more, then stops the clients.
//
// Every request ends as exactly one of:
//   ok          a complete response
//   refused     connect() refused or reset: safe, the client knows nothing was sent
//   ambiguous   the request was sent, then EOF or reset with no complete
//               response: the client cannot know whether it was processed
//   send_failed the request could not be written (reset before sending)
//   timeout     no response within 5 s
//   other       anything else (bad response, other connect errors)
// Prints one line:
//   shutdown_load server=NAME cycles=N ok= refused= ambiguous= send_failed= timeout= other= exits=0:N,...
#include "common.hpp"

#include <atomic>
#include <csignal>
#include <map>
#include <sys/wait.h>
#include <thread>

namespace {

struct Counts {
    std::atomic<long> ok{0}, refused{0}, ambiguous{0}, send_failed{0}, timeout{0}, other{0};
};

void client(bool keep_alive, int port, const std::atomic<bool>& stop, Counts& c) {
    const std::string req = keep_alive
                                ? "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                                : "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    std::string buf;
    int fd = -1;
    bool reused_next = false;
    while (!stop.load(std::memory_order_relaxed)) {
        if (fd < 0) {
            fd = bench::connect_to("127.0.0.1", port);
            if (fd < 0) {
                // Refused, or reset while the handshake was still in the
                // listener's SYN queue: either way nothing was sent. Safe.
                if (fd == -ECONNREFUSED || fd == -ECONNRESET) ++c.refused;
                else {
                    ++c.other;
                    if (getenv("SHUTDOWN_LOAD_DEBUG")) fprintf(stderr, "other: connect: %s\n", strerror(-fd));
                }
                fd = -1;
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                continue;
            }
        }
        bool reused = reused_next;
        reused_next = false;
        if (bench::send_all(fd, req.data(), req.size()) != 0) {
            ++c.send_failed;
            close(fd);
            fd = -1;
            continue;
        }
        bench::Response r;
        bench::RespResult rr = bench::read_response(fd, buf, r, 5000);
        bool reuse = false;
        switch (rr) {
        case bench::RespResult::ok:
            if (r.status == 200) ++c.ok;
            else {
                ++c.other;
                if (getenv("SHUTDOWN_LOAD_DEBUG")) fprintf(stderr, "other: status %d\n", r.status);
            }
            reuse = keep_alive && !r.conn_close;
            break;
        case bench::RespResult::eof_before_any:
        case bench::RespResult::eof_partial:
        case bench::RespResult::reset:
            ++c.ambiguous;
            if (getenv("SHUTDOWN_LOAD_DEBUG"))
                fprintf(stderr, "ambiguous: %s %s reused=%d t=%lld us\n", keep_alive ? "keep-alive" : "new-conn",
                        rr == bench::RespResult::reset ? "reset" : rr == bench::RespResult::eof_partial ? "eof-partial" : "eof",
                        int(reused), (long long)std::chrono::duration_cast<std::chrono::microseconds>(bench::Clock::now().time_since_epoch()).count() % 100000000);
            break;
        case bench::RespResult::timeout: ++c.timeout; break;
        case bench::RespResult::bad:
            ++c.other;
            if (getenv("SHUTDOWN_LOAD_DEBUG")) fprintf(stderr, "other: bad response or recv error\n");
            break;
        }
        reused_next = reuse;
        if (!reuse) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) close(fd);
}

// start_server runs argv with stdout on a pipe; returns the pid and the
// port from its `listening on` line, or pid -1.
pid_t start_server(char** argv, const std::string& log, int& port) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        setsid(); // its own session, so its own scheduler autogroup (see run.sh)
        dup2(p[1], 1);
        int lf = log.empty() ? -1 : open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (lf >= 0) dup2(lf, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    std::string line;
    auto deadline = bench::Clock::now() + std::chrono::seconds(10);
    char ch;
    while (bench::Clock::now() < deadline) {
        pollfd pf{p[0], POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0) continue;
        if (read(p[0], &ch, 1) != 1) break;
        if (ch == '\n') break;
        line += ch;
    }
    close(p[0]); // later writes to stdout get EPIPE/SIGPIPE; servers print only this line
    size_t colon = line.rfind(':');
    if (line.rfind("listening on http://", 0) != 0 || colon == std::string::npos) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        fprintf(stderr, "shutdown_load: no listening line (got '%s')\n", line.c_str());
        return -1;
    }
    port = atoi(line.c_str() + colon + 1);
    return pid;
}

} // namespace

int main(int argc, char** argv) {
    std::string name = "server", log;
    int cycles = 50, warm_ms = 300, threads = 16, settle_ms = 100;
    int i = 1;
    for (; i < argc; ++i) {
        std::string f = argv[i];
        if (f == "--") {
            ++i;
            break;
        }
        if (i + 1 >= argc) break;
        std::string v = argv[++i];
        if (f == "--name") name = v;
        else if (f == "--cycles") cycles = atoi(v.c_str());
        else if (f == "--warm-ms") warm_ms = atoi(v.c_str());
        else if (f == "--threads") threads = atoi(v.c_str());
        else if (f == "--settle-ms") settle_ms = atoi(v.c_str());
        else if (f == "--log") log = v;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: shutdown_load --name N [--cycles C] -- SERVER_COMMAND...\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    bench::raise_nofile(4096);
    Counts c;
    std::map<int, int> exits;
    for (int cycle = 0; cycle < cycles; ++cycle) {
        int port = 0;
        pid_t pid = start_server(argv + i, log, port);
        if (pid < 0) return 1;
        std::atomic<bool> stop{false};
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t)
            ts.emplace_back(client, t >= threads / 2, port, std::cref(stop), std::ref(c));
        std::this_thread::sleep_for(std::chrono::milliseconds(warm_ms));
        kill(pid, SIGTERM);
        if (getenv("SHUTDOWN_LOAD_DEBUG"))
            fprintf(stderr, "SIGTERM t=%lld us\n", (long long)std::chrono::duration_cast<std::chrono::microseconds>(bench::Clock::now().time_since_epoch()).count() % 100000000);
        int status = 0;
        auto deadline = bench::Clock::now() + std::chrono::seconds(30);
        while (waitpid(pid, &status, WNOHANG) == 0) {
            if (bench::Clock::now() > deadline) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        if (getenv("SHUTDOWN_LOAD_DEBUG"))
            fprintf(stderr, "exited t=%lld us\n", (long long)std::chrono::duration_cast<std::chrono::microseconds>(bench::Clock::now().time_since_epoch()).count() % 100000000);
        std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
        stop = true;
        for (auto& t : ts) t.join();
        exits[WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)]++;
    }
    std::string ex;
    for (auto& [code, n] : exits) ex += (ex.empty() ? "" : ",") + std::to_string(code) + ":" + std::to_string(n);
    printf("shutdown_load server=%s cycles=%d ok=%ld refused=%ld ambiguous=%ld send_failed=%ld "
           "timeout=%ld other=%ld exits=%s\n",
           name.c_str(), cycles, c.ok.load(), c.refused.load(), c.ambiguous.load(),
           c.send_failed.load(), c.timeout.load(), c.other.load(), ex.c_str());
    return 0;
}
