// fuzz/fuzz_multipart.cpp -- libFuzzer target: detail::MultipartParser and
// detail::multipart_boundary.
//
// The input is a multipart/form-data body with the boundary "B0und". The
// target checks that:
//   - feeding it whole, split at a position derived from the first byte,
//     and byte by byte gives the same result and the same events (parts'
//     heads, their data concatenated, part ends);
//   - data delivered never exceeds the input, parts never exceed
//     max_parts, and a finished parse is ok, 400 or 413;
//   - a body built from the input (fields cut at '&', file parts for
//     those starting with 'f') parses back to exactly those parts;
//   - multipart_boundary on the input's first line accepts only 1-70
//     bchars not ending in a space, and answers only 0, 400 or 415.
//
// Build and run: bash fuzz/run.sh SECONDS (from the repository root).
#include "fuzz_util.hpp"

namespace {

namespace gh = graceful_http;
constexpr const char* kBoundary = "B0und";

struct Events {
    std::string log; // P(name|filename|has)D<data>...E per part
    std::uint64_t data = 0;
    std::size_t parts = 0;
    gh::FormResult result;
};

Events parse(std::string_view in, std::size_t split, bool byte_by_byte,
             const gh::MultipartLimits& limits) {
    Events ev;
    bool in_data = false;
    gh::MultipartCallbacks cb;
    cb.on_part = [&](const gh::MultipartPart& p) {
        ev.log += "P(" + p.name + "|" + p.filename + "|" + (p.has_filename ? "1" : "0") + "|" +
                  p.content_type + ")";
        ++ev.parts;
        in_data = false;
        return true;
    };
    cb.on_data = [&](std::string_view d) {
        FUZZ_CHECK(!d.empty());
        if (!in_data) ev.log += "D";
        in_data = true;
        ev.log.append(d);
        ev.data += d.size();
        return true;
    };
    cb.on_part_end = [&] {
        ev.log += "E";
        return true;
    };
    gh::detail::MultipartParser p(kBoundary, limits, cb);
    if (byte_by_byte) {
        for (char c : in) p.feed(std::string_view(&c, 1));
    } else {
        fuzz::ExactCopy a(in.substr(0, split)), b(in.substr(split));
        p.feed(a.view());
        p.feed(b.view());
    }
    ev.result = p.finish();
    return ev;
}

bool same(const Events& a, const Events& b) {
    return a.log == b.log && a.result.http_status == b.result.http_status &&
           a.result.stopped == b.result.stopped;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const std::size_t first = size > 0 ? data[0] : 0;
    gh::MultipartLimits limits;
    limits.max_parts = 8;
    limits.max_part_header_bytes = 512;

    // 1. Split invariance and bounds.
    Events whole = parse(in, size, false, limits);
    Events split = parse(in, size == 0 ? 0 : (first * 2654435761u) % size, false, limits);
    FUZZ_CHECK(same(whole, split));
    if (size <= 4096) FUZZ_CHECK(same(whole, parse(in, 0, true, limits)));
    FUZZ_CHECK(whole.data <= size);
    FUZZ_CHECK(whole.parts <= limits.max_parts);
    int st = whole.result.http_status;
    FUZZ_CHECK(st == 0 || st == 400 || st == 413);

    // 2. Round trip: parts built from the input parse back exactly.
    std::string body = "preamble", want;
    std::size_t n = 0;
    for (std::string_view rest = in; !rest.empty() && n < limits.max_parts; ++n) {
        std::string_view item = rest.substr(0, rest.find('&'));
        rest.remove_prefix(std::min(rest.size(), item.size() + 1));
        bool file = !item.empty() && item[0] == 'f';
        std::string name = "n" + std::to_string(n);
        body += "\r\n--" + std::string(kBoundary) + "\r\nContent-Disposition: form-data; name=\"" +
                name + "\"" + (file ? "; filename=\"x\\\"y.bin\"" : "") + "\r\n\r\n";
        body.append(item);
        want += "P(" + name + "|" + (file ? "x\"y.bin" : "") + "|" + (file ? "1" : "0") + "|)";
        if (!item.empty()) want += "D" + std::string(item);
        want += "E";
    }
    body += "\r\n--" + std::string(kBoundary) + "--\r\nepilogue";
    if (in.find("\r\n--B0und") == std::string_view::npos && in.find('\r') == std::string_view::npos) {
        Events rt = parse(body, body.size() / 2, false, limits);
        FUZZ_CHECK(rt.result.ok());
        FUZZ_CHECK(rt.log == want);
    }

    // 3. The boundary parameter of a Content-Type.
    std::string b;
    int bs = gh::detail::multipart_boundary(in.substr(0, in.find('\n')), b);
    FUZZ_CHECK(bs == 0 || bs == 400 || bs == 415);
    if (bs == 0) FUZZ_CHECK(!b.empty() && b.size() <= 70 && b.back() != ' ');
    return 0;
}
