// kaclient: a fixed amount of keep-alive load, for profiling (callgrind
// and strace count work per request, so the count must be fixed; wrk runs
// for a time instead).
//
//   kaclient --port P [--conns 64] [--requests 200] [--path /] [--close 1]
//            [--body N]
//
// --conns threads, each with one keep-alive connection, each sending
// --requests `GET` requests one after another. With --close 1 every
// request goes on a new connection with `Connection: close`. With --body N
// the requests are `POST /echo` (or --path) with an N-byte body. Prints
//   kaclient requests=N ok=K seconds=S req_per_s=R
#include "common.hpp"

#include <atomic>
#include <thread>

int main(int argc, char** argv) {
    int port = 0, conns = 64, requests = 200, close_each = 0, body = -1;
    std::string path = "/";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string f = argv[i], v = argv[i + 1];
        if (f == "--port") port = atoi(v.c_str());
        else if (f == "--conns") conns = atoi(v.c_str());
        else if (f == "--requests") requests = atoi(v.c_str());
        else if (f == "--path") path = v;
        else if (f == "--close") close_each = atoi(v.c_str());
        else if (f == "--body") body = atoi(v.c_str());
    }
    if (port <= 0) {
        fprintf(stderr, "usage: kaclient --port P [--conns N] [--requests N]\n");
        return 2;
    }
    std::atomic<long> ok{0};
    if (body >= 0 && path == "/") path = "/echo";
    std::string req = std::string(body >= 0 ? "POST " : "GET ") + path +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                      (close_each ? "Connection: close\r\n" : "") +
                      (body >= 0 ? "Content-Type: application/octet-stream\r\nContent-Length: " +
                                       std::to_string(body) + "\r\n\r\n" + std::string(static_cast<size_t>(body), 'x')
                                 : std::string("\r\n"));
    auto t0 = bench::Clock::now();
    std::vector<std::thread> ts;
    for (int c = 0; c < conns; ++c)
        ts.emplace_back([&] {
            int fd = -1;
            std::string buf;
            for (int i = 0; i < requests; ++i) {
                if (fd < 0 && (fd = bench::connect_to("127.0.0.1", port)) < 0) return;
                bench::Response r;
                if (bench::send_all(fd, req.data(), req.size()) != 0) break;
                if (bench::read_response(fd, buf, r, 30000) != bench::RespResult::ok) break;
                if (r.status == 200) ++ok;
                if (r.conn_close) {
                    close(fd); // the server closes: so do we, at once (as wrk does)
                    fd = -1;
                    if (!close_each) break;
                }
            }
            if (fd >= 0) close(fd);
        });
    for (auto& t : ts) t.join();
    double s = std::chrono::duration<double>(bench::Clock::now() - t0).count();
    printf("kaclient requests=%ld ok=%ld seconds=%.3f req_per_s=%.0f\n",
           static_cast<long>(conns) * requests, ok.load(), s, static_cast<double>(ok.load()) / s);
    return ok.load() == static_cast<long>(conns) * requests ? 0 : 1;
}
