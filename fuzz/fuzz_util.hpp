// fuzz/fuzz_util.hpp -- helpers shared by the graceful_http fuzz targets.
//
// FUZZ_CHECK(cond) aborts with a message naming the invariant, so that
// libFuzzer records the input as a crash and the log says what broke.
#ifndef GRACEFUL_HTTP_FUZZ_UTIL_HPP
#define GRACEFUL_HTTP_FUZZ_UTIL_HPP

#include "graceful_http.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz {

[[noreturn]] inline void invariant_failed(const char* what, const char* file, int line) {
    std::fprintf(stderr, "\n==FUZZ== INVARIANT VIOLATED at %s:%d\n==FUZZ==   %s\n", file, line,
                 what);
    std::fflush(stderr);
    std::abort();
}

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) ::fuzz::invariant_failed(#cond, __FILE__, __LINE__);                  \
    } while (0)

// Owned copy of a byte range in a heap block of exactly that size, so that
// AddressSanitizer reports any read past the end of the view handed to the
// code under test (libFuzzer does the same for the whole input).
class ExactCopy {
public:
    explicit ExactCopy(std::string_view s)
        : size_(s.size()), buf_(new char[s.size() == 0 ? 1 : s.size()]) {
        if (!s.empty()) std::memcpy(buf_.get(), s.data(), s.size());
    }
    std::string_view view() const { return std::string_view(buf_.get(), size_); }

private:
    std::size_t size_;
    std::unique_ptr<char[]> buf_;
};

// ---- Running the chunked decoder over a split input ----

using graceful_http::detail::ChunkedDecoder;

struct ChunkedOutcome {
    ChunkedDecoder::Status status = ChunkedDecoder::Status::more;
    std::size_t consumed = 0; // summed over every feed
    int http_status = 0;
    std::uint64_t total = 0; // decoder.total() at the end
    std::string out;         // decoded data (empty when discarding)
};

// run_chunked feeds `in` to a fresh decoder in pieces ending at `cuts`
// (ascending, each <= in.size(); the end of the input is always a cut),
// each piece in its own exactly-sized buffer, stopping at the first
// result that is not `more`. Checks the per-call contract on the way.
inline ChunkedOutcome run_chunked(std::string_view in, const std::vector<std::size_t>& cuts,
                                  std::size_t max_body, std::size_t max_meta, bool discard,
                                  bool empty_feeds = false) {
    ChunkedDecoder dec(max_body, max_meta);
    ChunkedOutcome o;
    std::size_t pos = 0;
    std::size_t ci = 0;
    for (;;) {
        std::size_t end = ci < cuts.size() ? cuts[ci++] : in.size();
        if (end < pos) continue; // a repeated or out-of-order cut: skip it
        if (end > in.size()) end = in.size();
        ExactCopy piece(in.substr(pos, end - pos));
        std::size_t before_out = o.out.size();
        std::uint64_t before_total = dec.total();
        ChunkedDecoder::Result r = dec.feed(piece.view(), discard ? nullptr : &o.out);
        FUZZ_CHECK(r.consumed <= piece.view().size());
        FUZZ_CHECK(dec.total() >= before_total);
        if (!discard) FUZZ_CHECK(o.out.size() - before_out == dec.total() - before_total);
        if (!discard) FUZZ_CHECK(o.out.size() == dec.total());
        // The decoded bytes come from this piece: never more than it held.
        FUZZ_CHECK(dec.total() - before_total <= r.consumed);
        // total() never exceeds the constructor's max_body, whatever the status.
        FUZZ_CHECK(dec.total() <= max_body);
        o.consumed += r.consumed;
        o.total = dec.total();
        if (r.status == ChunkedDecoder::Status::more) {
            FUZZ_CHECK(r.http_status == 0);
            FUZZ_CHECK(r.consumed == piece.view().size()); // `more` means all was used
        } else if (r.status == ChunkedDecoder::Status::done) {
            FUZZ_CHECK(r.http_status == 0);
        } else {
            FUZZ_CHECK(r.status == ChunkedDecoder::Status::error);
            FUZZ_CHECK(r.http_status == 400 || r.http_status == 413 || r.http_status == 431);
        }
        if (r.status != ChunkedDecoder::Status::more) {
            o.status = r.status;
            o.http_status = r.http_status;
            return o;
        }
        if (empty_feeds) { // an empty feed is a no-op while more is wanted
            ChunkedDecoder::Result e = dec.feed(std::string_view(), discard ? nullptr : &o.out);
            FUZZ_CHECK(e.status == ChunkedDecoder::Status::more);
            FUZZ_CHECK(e.consumed == 0);
            FUZZ_CHECK(dec.total() == o.total);
        }
        pos = end;
        if (end == in.size()) return o;
    }
}

inline bool same_outcome(const ChunkedOutcome& a, const ChunkedOutcome& b, bool compare_data) {
    return a.status == b.status && a.consumed == b.consumed && a.http_status == b.http_status &&
           a.total == b.total && (!compare_data || a.out == b.out);
}

// Cut positions: whole, one cut at `at`, two cuts, and every byte.
inline std::vector<std::size_t> cuts_whole(std::size_t n) { return {n}; }
inline std::vector<std::size_t> cuts_at(std::size_t at, std::size_t n) {
    if (at > n) at = n;
    return {at, n};
}
inline std::vector<std::size_t> cuts_each_byte(std::size_t n) {
    std::vector<std::size_t> c;
    c.reserve(n + 1);
    for (std::size_t i = 1; i <= n; ++i) c.push_back(i);
    if (n == 0) c.push_back(0);
    return c;
}

// Check that splitting `in` never changes the decoder's outcome.
inline ChunkedOutcome check_chunked_splits(std::string_view in, std::size_t split_seed,
                                           std::size_t max_body, std::size_t max_meta,
                                           std::size_t byte_by_byte_limit) {
    ChunkedOutcome whole = run_chunked(in, cuts_whole(in.size()), max_body, max_meta, false);
    const std::size_t n = in.size();
    const std::size_t at = n == 0 ? 0 : split_seed % (n + 1);
    ChunkedOutcome one = run_chunked(in, cuts_at(at, n), max_body, max_meta, false);
    FUZZ_CHECK(same_outcome(whole, one, true));
    const std::size_t at2 = n == 0 ? 0 : (split_seed * 7919u + 13u) % (n + 1);
    std::vector<std::size_t> two = {at < at2 ? at : at2, at < at2 ? at2 : at, n};
    ChunkedOutcome three = run_chunked(in, two, max_body, max_meta, false);
    FUZZ_CHECK(same_outcome(whole, three, true));
    // Discarding (out == nullptr) consumes and counts the same.
    ChunkedOutcome dropped = run_chunked(in, cuts_at(at, n), max_body, max_meta, true);
    FUZZ_CHECK(same_outcome(whole, dropped, false));
    FUZZ_CHECK(dropped.out.empty());
    if (n <= byte_by_byte_limit) {
        ChunkedOutcome each =
            run_chunked(in, cuts_each_byte(n), max_body, max_meta, false, /*empty_feeds=*/true);
        FUZZ_CHECK(same_outcome(whole, each, true));
    }
    if (whole.status == ChunkedDecoder::Status::done) {
        // The body ends where the decoder said: the consumed prefix alone
        // decodes the same, and the bytes after it are not looked at.
        ChunkedOutcome prefix =
            run_chunked(in.substr(0, whole.consumed), cuts_whole(whole.consumed), max_body,
                        max_meta, false);
        FUZZ_CHECK(same_outcome(whole, prefix, true));
        FUZZ_CHECK(whole.consumed >= 5); // at least "0\r\n\r\n"
        FUZZ_CHECK(in.substr(whole.consumed - 2, 2) == "\r\n");
        FUZZ_CHECK(whole.total <= max_body);
    } else if (whole.status == ChunkedDecoder::Status::more) {
        FUZZ_CHECK(whole.consumed == n);
    } else if (whole.http_status != 413) {
        FUZZ_CHECK(whole.consumed < n); // the offending byte was not consumed
    } else {
        FUZZ_CHECK(whole.consumed <= n); // 413 comes after the size line's LF
    }
    return whole;
}

} // namespace fuzz

#endif
