// Helpers for the stress suite (stress/stress.cpp): process figures from
// /proc, RLIMIT_NOFILE, a count-down latch, checks and figure lines, and
// the sizes that shrink under a sanitizer. Everything else (the raw HTTP
// client, Running, Gate, fd and thread counters) comes from
// tests/support.hpp, shared with the Catch2 suite.
#pragma once

#include "../tests/support.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define STRESS_SANITIZER 1
#endif
#endif
#ifndef STRESS_SANITIZER
#define STRESS_SANITIZER 0
#endif

namespace stress {

using support::Clock;
using support::ms;
namespace gh = graceful_http;

constexpr bool kSanitizer = STRESS_SANITIZER != 0;

inline std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string strf(const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

inline long ms_since(Clock::time_point t) { return support::elapsed_ms(t); }
inline double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// ---- sizes: the default, or a smaller one under a sanitizer, or
// --name=value on the command line (for experiments) ----
class Params {
public:
    Params(int argc, char** argv) {
        for (int i = 2; i < argc; ++i) {
            std::string a = argv[i];
            if (a.rfind("--", 0) != 0) continue;
            std::size_t eq = a.find('=');
            if (eq == std::string::npos) continue;
            over_[a.substr(2, eq - 2)] = std::atol(a.c_str() + eq + 1);
        }
    }
    long get(const char* name, long normal, long sanitized) const {
        auto it = over_.find(name);
        if (it != over_.end()) return it->second;
        return kSanitizer ? sanitized : normal;
    }

private:
    std::map<std::string, long> over_;
};

// ---- /proc figures ----
inline long rss_kib() {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, f))
        if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::atol(line + 6);
    std::fclose(f);
    return kib;
}
inline int fds() { return support::count_fds(); }
inline int threads() { return support::count_threads(); }

// start_runtime_threads: ThreadSanitizer starts a background thread of
// its own with the first thread the program creates. Creating one before
// a thread baseline is taken keeps it out of the counts. (Not before a
// fork: the child of a multi-threaded process may not start threads
// under TSan.)
inline void start_runtime_threads() {
    std::thread([] {}).join();
}

// raise_nofile makes at least `want` descriptors available (soft limit,
// and the hard limit too when we may). Returns the soft limit obtained.
inline long raise_nofile(long want) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (static_cast<long>(rl.rlim_cur) >= want) return static_cast<long>(rl.rlim_cur);
    rlimit nr = rl;
    nr.rlim_cur = static_cast<rlim_t>(want);
    if (static_cast<long>(nr.rlim_max) < want) nr.rlim_max = static_cast<rlim_t>(want);
    if (setrlimit(RLIMIT_NOFILE, &nr) != 0) { // not allowed to raise the hard limit
        nr = rl;
        nr.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nr);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    return static_cast<long>(rl.rlim_cur);
}

// ---- a count-down latch ----
class Latch {
public:
    explicit Latch(int n) : n_(n) {}
    void count_down() {
        std::lock_guard<std::mutex> lk(mu_);
        if (n_ > 0 && --n_ == 0) cv_.notify_all();
    }
    bool wait(ms bound) {
        std::unique_lock<std::mutex> lk(mu_);
        return cv_.wait_for(lk, bound, [&] { return n_ == 0; });
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    int n_;
};

// ---- checks and figures ----
// A case prints "  [ok] ..." / "  [FAIL] ..." for every criterion and
// "FIGURE <case>: ..." for every number the README quotes; run.sh
// repeats the FIGURE lines at the end.
class Verdict {
public:
    explicit Verdict(std::string name) : name_(std::move(name)) {}
    bool check(bool ok, const std::string& what) {
        std::printf("  [%s] %s\n", ok ? "ok" : "FAIL", what.c_str());
        std::fflush(stdout);
        if (!ok) ++failures_;
        return ok;
    }
    void figure(const std::string& text) {
        std::printf("FIGURE %s: %s\n", name_.c_str(), text.c_str());
        std::fflush(stdout);
    }
    void note(const std::string& text) {
        std::printf("  %s\n", text.c_str());
        std::fflush(stdout);
    }
    int finish() {
        std::printf("RESULT %s %s (%d failed check%s)\n", name_.c_str(),
                    failures_ == 0 ? "PASS" : "FAIL", failures_, failures_ == 1 ? "" : "s");
        std::fflush(stdout);
        return failures_ == 0 ? 0 : 1;
    }
    int failures() const { return failures_; }

private:
    std::string name_;
    int failures_ = 0;
};

// percentile of a sample (p in [0,1]); 0 when empty.
inline double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

inline void listen_local(gh::Server& srv, Verdict& v) {
    gh::Error e = srv.listen("127.0.0.1", 0);
    if (e) v.check(false, "listen: " + e.message());
}

} // namespace stress
