// fuzz/fuzz_range.cpp -- libFuzzer target: the static-file parsers,
// detail::parse_range, detail::parse_http_date and detail::check_file_path.
//
// The first 8 bytes (little-endian) give the representation size, the rest
// is a Range field value (and, as is, an HTTP date and a request path).
// Invariants checked:
//   - parse_range: ok means 1..kMax ranges, each inside [0, size) and
//     non-empty, adding up to at most size; unsatisfiable and ignore leave
//     no ranges; the result is deterministic and the unit's case does not
//     matter; "bytes=A-B" built from the input (A <= B < size) is exactly
//     that range, "bytes=-N" the last min(N, size) bytes.
//   - parse_http_date: an accepted date formats back to the trimmed input
//     and parses again to the same seconds.
//   - check_file_path: ok or hidden means no empty, "." or ".." segment
//     and no backslash or NUL; ok with dotfiles=false means no segment
//     starts with '.'.
//
// Build and run: bash fuzz/run.sh SECONDS (from the repository root).
#include "fuzz_util.hpp"

using graceful_http::detail::check_file_path;
using graceful_http::detail::format_http_date;
using graceful_http::detail::parse_http_date;
using graceful_http::detail::parse_range;
using graceful_http::detail::PathCheck;
using graceful_http::detail::RangeSet;
using graceful_http::detail::RangeStatus;

namespace {

void check_ranges(RangeStatus st, const RangeSet& rs, std::uint64_t size) {
    if (st != RangeStatus::ok) {
        FUZZ_CHECK(rs.count == 0);
        return;
    }
    FUZZ_CHECK(rs.count >= 1 && rs.count <= RangeSet::kMax);
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < rs.count; ++i) {
        FUZZ_CHECK(rs.ranges[i].length >= 1);
        FUZZ_CHECK(rs.ranges[i].first < size);
        FUZZ_CHECK(rs.ranges[i].length <= size - rs.ranges[i].first);
        sum += rs.ranges[i].length;
        FUZZ_CHECK(sum <= size);
    }
}

bool same(const RangeSet& a, const RangeSet& b) {
    if (a.count != b.count) return false;
    for (std::size_t i = 0; i < a.count; ++i)
        if (a.ranges[i].first != b.ranges[i].first || a.ranges[i].length != b.ranges[i].length)
            return false;
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < 8 && i < size; ++i) n |= std::uint64_t{data[i]} << (8 * i);
    if (size > 0 && data[0] % 4 != 0) n %= 1u << 20; // mostly file-like sizes, sometimes huge
    const fuzz::ExactCopy in(std::string_view(reinterpret_cast<const char*>(data), size)
                                 .substr(size < 8 ? size : 8));
    const std::string_view v = in.view();

    RangeSet a, b;
    RangeStatus st = parse_range(v, n, a);
    check_ranges(st, a, n);
    FUZZ_CHECK(parse_range(v, n, b) == st && same(a, b)); // deterministic, resets `out`
    std::string upper(v);
    for (std::size_t i = 0; i < upper.size() && i < 12; ++i)
        if (upper[i] >= 'a' && upper[i] <= 'z') upper[i] = static_cast<char>(upper[i] - 32);
    if (upper.find('=') != std::string::npos && v.find("bytes=") == v.find_first_not_of(" \t") &&
        v.find("bytes=") != std::string::npos) {
        RangeSet c;
        FUZZ_CHECK(parse_range(upper, n, c) == st && same(a, c));
    }
    constexpr std::uint64_t k19 = 10000000000000000000ULL; // 20 digits are not read
    if (n > 0) { // ranges built from the input are read back exactly
        std::uint64_t x = 0, y = 0;
        for (std::size_t i = 0; i < v.size(); ++i) {
            std::uint64_t& h = i % 2 ? x : y;
            h = h * 131 + static_cast<unsigned char>(v[i]);
        }
        std::uint64_t first = x % n, last = first + y % (n - first);
        RangeSet c;
        std::string spec = "bytes=" + std::to_string(first) + "-" + std::to_string(last);
        FUZZ_CHECK(last >= k19 || (parse_range(spec, n, c) == RangeStatus::ok && c.count == 1 &&
                   c.ranges[0].first == first && c.ranges[0].length == last - first + 1));
        std::uint64_t suffix = y % (n < k19 ? n + 2 : k19 - 1) + 1;
        FUZZ_CHECK(parse_range("bytes=-" + std::to_string(suffix), n, c) == RangeStatus::ok &&
                   c.ranges[0].length == (suffix < n ? suffix : n) &&
                   c.ranges[0].first + c.ranges[0].length == n);
    }

    std::int64_t secs = 0, again = 0;
    if (parse_http_date(v, secs)) {
        char buf[48];
        std::string_view t = v;
        while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
        while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
        FUZZ_CHECK(format_http_date(secs, buf) == t);
        FUZZ_CHECK(parse_http_date(format_http_date(secs, buf), again) && again == secs);
    }

    for (bool dotfiles : {false, true}) {
        PathCheck pc = check_file_path(v, dotfiles);
        if (pc == PathCheck::bad) continue;
        FUZZ_CHECK(v.find('\\') == std::string_view::npos && v.find('\0') == std::string_view::npos);
        std::string_view rest = v;
        while (!rest.empty()) {
            std::size_t slash = rest.find('/');
            std::string_view seg = rest.substr(0, slash);
            FUZZ_CHECK(!seg.empty() && seg != "." && seg != "..");
            if (pc == PathCheck::ok && !dotfiles) FUZZ_CHECK(seg.front() != '.');
            if (slash == std::string_view::npos) break;
            rest.remove_prefix(slash + 1);
        }
    }
    return 0;
}
