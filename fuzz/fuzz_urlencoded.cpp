// fuzz/fuzz_urlencoded.cpp -- libFuzzer target: parse_urlencoded and
// detail::field_param.
//
// The target checks that:
//   - parse_urlencoded resets its output, is deterministic, yields at
//     most one field per '&'-separated piece and no NUL the input lacks
//     (%00 is refused; a raw byte passes as sent);
//   - a successful parse without NUL, percent-encoded again, parses back
//     to exactly the same fields (in order);
//   - field_param on the input finds values that lie within the input's
//     length and is deterministic.
//
// Build and run: bash fuzz/run.sh SECONDS (from the repository root).
#include "fuzz_util.hpp"

namespace gh = graceful_http;

namespace {
std::string encode(const std::string& s) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (char ch : s) {
        unsigned char c = static_cast<unsigned char>(ch);
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.') {
            out.push_back(static_cast<char>(c));
        } else if (c == ' ') {
            out.push_back('+');
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::ExactCopy copy(std::string_view(reinterpret_cast<const char*>(data), size));
    const std::string_view in = copy.view();
    gh::FormFields a{{"stale", "x"}}, b;
    bool ok = gh::parse_urlencoded(in, a);
    FUZZ_CHECK(ok == gh::parse_urlencoded(in, b));
    if (ok) {
        FUZZ_CHECK(a == b);
        std::size_t pieces = 1;
        for (char c : in) pieces += c == '&';
        FUZZ_CHECK(a.size() <= pieces);
        std::string again;
        bool nul = in.find('\0') != std::string_view::npos;
        for (const auto& kv : a) {
            FUZZ_CHECK(nul || kv.first.find('\0') == std::string::npos);
            FUZZ_CHECK(nul || kv.second.find('\0') == std::string::npos);
            again += (again.empty() ? "" : "&") + encode(kv.first) + "=" + encode(kv.second);
        }
        gh::FormFields c;
        // An empty name and value ("=") is kept; only empty pieces are skipped.
        FUZZ_CHECK(nul || (gh::parse_urlencoded(again, c) && c == a));
    }
    std::string v1, v2;
    bool f1 = gh::detail::field_param(in, "name", v1), f2 = gh::detail::field_param(in, "name", v2);
    FUZZ_CHECK(f1 == f2 && v1 == v2);
    if (f1) FUZZ_CHECK(v1.size() <= size);
    return 0;
}
