// shutdown_lag: how long after the last response ends does shutdown()
// return? graceful_http in-process; bench/peers/go-shutdown does the same
// for Go's http.Server.Shutdown, with the same client and schedule.
//
//   shutdown_lag [--runs 100]
//
// Each run: a fresh Server on 127.0.0.1:0 with GET /sleep?ms=X (X varies
// over 5..250 ms by a fixed schedule, so the request's end falls at every
// phase of a polling loop, if there is one). A client thread sends one
// request on a raw socket. When the handler has started, the main thread
// calls shutdown(10 s). The client reads the response (it carries
// `Connection: close`), takes t_end the moment it holds the last byte,
// and closes its socket at once, as any HTTP client does on close. The
// main thread takes t_ret when shutdown() returns. lag = t_ret - t_end.
// Prints one line: shutdown_lag server=graceful_http runs=N p50_ms= p99_ms= max_ms= mean_ms=
#include "../graceful_http.hpp"
#include "common.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

int main(int argc, char** argv) {
    int runs = 100;
    for (int i = 1; i + 1 < argc; i += 2)
        if (std::string(argv[i]) == "--runs") runs = atoi(argv[i + 1]);
    std::vector<double> lags;
    int failures = 0;
    for (int run = 0; run < runs; ++run) {
        int ms = 5 + (run * 7919) % 246;
        std::mutex mu;
        std::condition_variable cv;
        bool started = false;
        graceful_http::Server srv;
        srv.get("/sleep", [&](const graceful_http::Request& req, graceful_http::Response& res) {
            {
                std::lock_guard<std::mutex> lk(mu);
                started = true;
            }
            cv.notify_all();
            long v = atol(req.query_param("ms").c_str());
            std::this_thread::sleep_for(std::chrono::milliseconds(v)); // in-flight work completes
            res.text("slept " + std::to_string(v) + " ms\n", "text/plain");
        });
        if (auto err = srv.listen("127.0.0.1", 0)) {
            fprintf(stderr, "shutdown_lag: %s\n", err.message().c_str());
            return 1;
        }
        int port = srv.port();
        std::thread serving([&] { (void)srv.serve(); });
        bench::Clock::time_point t_end{};
        bool client_ok = false;
        std::thread client([&] {
            int fd = bench::connect_to("127.0.0.1", port);
            if (fd < 0) return;
            std::string req = "GET /sleep?ms=" + std::to_string(ms) +
                              " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
            std::string buf;
            bench::Response r;
            if (bench::send_all(fd, req.data(), req.size()) == 0 &&
                bench::read_response(fd, buf, r, 10000) == bench::RespResult::ok &&
                r.status == 200) {
                t_end = bench::Clock::now();
                client_ok = true;
            }
            close(fd);
        });
        {
            std::unique_lock<std::mutex> lk(mu);
            cv.wait_for(lk, std::chrono::seconds(10), [&] { return started; });
        }
        graceful_http::ShutdownReport rep = srv.shutdown(std::chrono::seconds(10));
        auto t_ret = bench::Clock::now();
        client.join();
        serving.join();
        if (!client_ok || !rep.drained) {
            ++failures;
            continue;
        }
        lags.push_back(std::chrono::duration<double, std::milli>(t_ret - t_end).count());
    }
    double sum = 0, mx = 0;
    for (double v : lags) {
        sum += v;
        mx = std::max(mx, v);
    }
    printf("shutdown_lag server=graceful_http runs=%zu failures=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f\n",
           lags.size(), failures, bench::percentile(lags, 50), bench::percentile(lags, 99), mx,
           lags.empty() ? 0.0 : sum / static_cast<double>(lags.size()));
    return failures == 0 ? 0 : 1;
}
