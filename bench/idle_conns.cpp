// idle_conns: RSS per idle keep-alive connection.
//
//   idle_conns --port P --n N --pid PID[,PID...] [--host 127.0.0.1] [--settle-ms 500]
//              [--max-seconds 240] [--hold-ms 0]
//
// Reads the server's VmRSS (summed over the pids, e.g. nginx master and
// worker), opens N keep-alive connections one after another, sends
// `GET /` on each and reads the whole response, keeps them all open,
// waits --settle-ms, reads VmRSS again and prints one line:
//   idle_conns n=N ok=K rss_before_kib=A rss_after_kib=B per_conn_kib=X
// ok < N means the server could not hold N connections (per_conn_kib is
// then computed over ok; the opening stops after --max-seconds, default
// 240). Closes everything before exiting.
#include "common.hpp"

#include <sstream>
#include <thread>

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    int port = 0, n = 0, settle_ms = 500, max_seconds = 240, hold_ms = 0;
    std::vector<int> pids;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string f = argv[i], v = argv[i + 1];
        if (f == "--port") port = atoi(v.c_str());
        else if (f == "--host") host = v;
        else if (f == "--n") n = atoi(v.c_str());
        else if (f == "--settle-ms") settle_ms = atoi(v.c_str());
        else if (f == "--max-seconds") max_seconds = atoi(v.c_str());
        else if (f == "--hold-ms") hold_ms = atoi(v.c_str());
        else if (f == "--pid") {
            std::stringstream ss(v);
            std::string p;
            while (std::getline(ss, p, ',')) pids.push_back(atoi(p.c_str()));
        }
    }
    if (port <= 0 || n <= 0 || pids.empty()) {
        fprintf(stderr, "usage: idle_conns --port P --n N --pid PID[,PID]\n");
        return 2;
    }
    bench::raise_nofile(static_cast<rlim_t>(n) + 256);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    long before = bench::rss_kib(pids);
    std::vector<int> fds;
    fds.reserve(static_cast<size_t>(n));
    const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    std::string buf;
    std::string why;
    int ok = 0;
    auto give_up = bench::Clock::now() + std::chrono::seconds(max_seconds);
    for (int i = 0; i < n; ++i) {
        if (bench::Clock::now() > give_up) {
            why = "time_limit";
            break;
        }
        int fd = bench::connect_to(host, port);
        if (fd < 0) {
            why = std::string("connect: ") + strerror(-fd);
            break;
        }
        fds.push_back(fd);
        if (int e = bench::send_all(fd, req, sizeof req - 1)) {
            why = std::string("send: ") + strerror(e);
            break;
        }
        bench::Response r;
        bench::RespResult rr = bench::read_response(fd, buf, r, 5000);
        if (rr != bench::RespResult::ok || r.status != 200 || r.conn_close) {
            why = "response " + std::to_string(static_cast<int>(rr)) + " status " +
                  std::to_string(r.status) + (r.conn_close ? " (server closed)" : "");
            break;
        }
        ++ok;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
    long after = bench::rss_kib(pids);
    double per = ok > 0 ? static_cast<double>(after - before) / ok : 0;
    printf("idle_conns n=%d ok=%d rss_before_kib=%ld rss_after_kib=%ld per_conn_kib=%.1f%s%s\n", n,
           ok, before, after, per, why.empty() ? "" : " stopped_by=", why.c_str());
    fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms)); // for a look at /proc/PID/smaps
    for (int fd : fds) close(fd);
    return ok == n ? 0 : 1;
}
