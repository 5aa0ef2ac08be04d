// fuzz/fuzz_request.cpp -- libFuzzer target: the request side of a
// graceful_http connection, as pure functions.
//
// The input is the byte stream a client sends on one connection. Like
// Conn::serve_one, the target repeatedly parses a request head
// (detail::parse_request_head), frames it (detail::frame_request), splits
// the target (detail::parse_target, detail::percent_decode), routes it
// (detail::match_route), skips a Content-Length body or decodes a chunked
// one (detail::ChunkedDecoder), and goes on with the next pipelined request
// while the connection would persist. Every step checks invariants and
// aborts when one is violated (see FUZZ_CHECK).
//
// Build and run: bash fuzz/run.sh SECONDS (from the repository root).
#include "fuzz_util.hpp"

namespace gh = graceful_http;
namespace d = graceful_http::detail;
using fuzz::ExactCopy;

namespace {

constexpr std::size_t kMaxBody = 1000; // small, so that 413 is reachable
constexpr int kMaxRequests = 8;        // pipelined requests per input

bool inside(std::string_view part, std::string_view whole) {
    auto p = reinterpret_cast<std::uintptr_t>(part.data());
    auto b = reinterpret_cast<std::uintptr_t>(whole.data());
    return p >= b && p + part.size() <= b + whole.size();
}

std::size_t offset_in(std::string_view part, std::string_view whole) {
    return static_cast<std::size_t>(part.data() - whole.data());
}

bool is_ctl(unsigned char u) { return u < 0x20 || u == 0x7f; }

bool is_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// An independent list splitter (RFC 9110 §5.6.1): non-empty trimmed items.
std::vector<std::string_view> list_items(std::string_view v) {
    std::vector<std::string_view> items;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= v.size(); ++i) {
        if (i == v.size() || v[i] == ',') {
            std::string_view item = v.substr(start, i - start);
            while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
                item.remove_prefix(1);
            while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
                item.remove_suffix(1);
            if (!item.empty()) items.push_back(item);
            start = i + 1;
        }
    }
    return items;
}

// A parsed head recorded as offsets, to compare parses of different buffers.
struct HeadShape {
    d::ParseStatus status = d::ParseStatus::incomplete;
    int http_status = 0;
    std::size_t head_bytes = 0;
    int version_minor = 1;
    std::vector<std::pair<std::size_t, std::size_t>> spans; // method, target, names/values
};

HeadShape shape_of(const d::ParseResult& r, const d::RequestHead& h, std::string_view buf) {
    HeadShape s;
    s.status = r.status;
    s.http_status = r.http_status;
    s.head_bytes = r.head_bytes;
    if (r.status != d::ParseStatus::done) return s;
    s.version_minor = h.version_minor;
    s.spans.emplace_back(offset_in(h.method, buf), h.method.size());
    s.spans.emplace_back(offset_in(h.target, buf), h.target.size());
    for (const d::FieldView& f : h.fields) {
        s.spans.emplace_back(offset_in(f.name, buf), f.name.size());
        s.spans.emplace_back(offset_in(f.value, buf), f.value.size());
    }
    return s;
}

bool same_shape(const HeadShape& a, const HeadShape& b) {
    return a.status == b.status && a.http_status == b.http_status &&
           a.head_bytes == b.head_bytes && a.version_minor == b.version_minor &&
           a.spans == b.spans;
}

// ---- parse_request_head ----

// Invariants of one parse of `buf` (an exactly-sized buffer).
void check_parse(std::string_view buf, const d::HeadLimits& lim, const d::ParseResult& r,
                 const d::RequestHead& h) {
    switch (r.status) {
    case d::ParseStatus::incomplete:
        FUZZ_CHECK(r.http_status == 0);
        FUZZ_CHECK(r.head_bytes == 0);
        return;
    case d::ParseStatus::error:
        // The parser itself answers only these; 408 (timeout) comes from
        // the connection, 413/417/501 from frame_request.
        FUZZ_CHECK(r.http_status == 400 || r.http_status == 414 || r.http_status == 431 ||
                   r.http_status == 501 || r.http_status == 505);
        if (r.http_status == 501) { // only a method longer than any we implement
            std::size_t p = buf.find_first_not_of("\r\n");
            FUZZ_CHECK(p != std::string_view::npos && p <= 8);
            std::string_view m = buf.substr(p, d::kMaxMethodBytes + 1);
            FUZZ_CHECK(m.size() == d::kMaxMethodBytes + 1 && d::is_token(m));
        }
        FUZZ_CHECK(r.head_bytes == 0);
        if (r.http_status == 414) FUZZ_CHECK(buf.size() > lim.max_request_line);
        if (r.http_status == 431) FUZZ_CHECK(buf.size() > lim.max_header);
        return;
    case d::ParseStatus::done:
        break;
    }
    FUZZ_CHECK(r.http_status == 0);
    const std::size_t hb = r.head_bytes;
    FUZZ_CHECK(hb >= 14 && hb <= buf.size()); // "M / HTTP/1.1\n\n" at the very least
    FUZZ_CHECK(hb <= lim.max_header);
    const std::string_view head = buf.substr(0, hb);
    // The head ends with an empty line (CRLF or bare LF).
    FUZZ_CHECK(head[hb - 1] == '\n');
    FUZZ_CHECK(head[hb - 2] == '\n' || (head[hb - 2] == '\r' && head[hb - 3] == '\n'));

    // Every view lies inside the head, in order, and does not overlap.
    FUZZ_CHECK(inside(h.method, head) && inside(h.target, head));
    std::size_t last_end = 0;
    auto in_order = [&](std::string_view v) {
        FUZZ_CHECK(inside(v, head));
        FUZZ_CHECK(offset_in(v, head) >= last_end);
        last_end = offset_in(v, head) + v.size();
    };
    in_order(h.method);
    in_order(h.target);
    for (const d::FieldView& f : h.fields) {
        in_order(f.name);
        in_order(f.value);
    }

    // Request line: method SP target SP HTTP/1.x, within the limit.
    FUZZ_CHECK(d::is_token(h.method));
    FUZZ_CHECK(!h.target.empty());
    FUZZ_CHECK(h.method.size() <= d::kMaxMethodBytes);
    for (char c : h.target) { // visible ASCII, no fragment
        unsigned char u = static_cast<unsigned char>(c);
        FUZZ_CHECK(u > 0x20 && u < 0x7f && c != '#');
    }
    const std::size_t m = offset_in(h.method, head);
    FUZZ_CHECK(m <= 8); // at most four empty lines before the request line
    for (std::size_t i = 0; i < m; ++i) FUZZ_CHECK(head[i] == '\r' || head[i] == '\n');
    FUZZ_CHECK(offset_in(h.target, head) == m + h.method.size() + 1);
    FUZZ_CHECK(head[m + h.method.size()] == ' ');
    const std::size_t v = offset_in(h.target, head) + h.target.size();
    FUZZ_CHECK(head.substr(v, 7) == " HTTP/1");
    FUZZ_CHECK(h.version_minor == 0 || h.version_minor == 1);
    const std::size_t line_end = head.find('\n', m);
    FUZZ_CHECK(line_end != std::string_view::npos);
    FUZZ_CHECK(line_end - m <= lim.max_request_line);

    // Field lines: token ":" OWS value OWS; the value is trimmed, with no
    // CTL but HTAB (so no CR, LF or NUL can reach a handler).
    for (const d::FieldView& f : h.fields) {
        FUZZ_CHECK(d::is_token(f.name));
        FUZZ_CHECK(head[offset_in(f.name, head) + f.name.size()] == ':');
        const std::size_t ns = offset_in(f.name, head);
        FUZZ_CHECK(head[ns - 1] == '\n'); // a name starts a line: no obs-fold
        if (!f.value.empty()) {
            FUZZ_CHECK(f.value.front() != ' ' && f.value.front() != '\t');
            FUZZ_CHECK(f.value.back() != ' ' && f.value.back() != '\t');
        }
        for (char c : f.value) {
            unsigned char u = static_cast<unsigned char>(c);
            FUZZ_CHECK(!is_ctl(u) || c == '\t');
        }
    }
    // No bare CR and no NUL anywhere in the head.
    for (std::size_t i = 0; i < hb; ++i) {
        FUZZ_CHECK(head[i] != '\0');
        if (head[i] == '\r') FUZZ_CHECK(i + 1 < hb && head[i + 1] == '\n');
    }
}

// Parse `buf` with `lim`, check it, and check that prefixes and the head
// alone agree with it. Returns the parse of `buf` (views into `buf`).
d::ParseResult check_head(std::string_view buf, const d::HeadLimits& lim, d::RequestHead& h,
                          std::size_t seed) {
    d::ParseResult r = d::parse_request_head(buf, lim, h);
    check_parse(buf, lim, r, h);
    const HeadShape full = shape_of(r, h, buf);

    // Deterministic and resetting: parsing again into a used head (here:
    // one holding fields from an unrelated parse) gives the same result.
    {
        d::RequestHead used;
        used.method = "X";
        used.fields.push_back(d::FieldView{"Stale", "field"});
        used.version_minor = 0;
        d::ParseResult again = d::parse_request_head(buf, lim, used);
        FUZZ_CHECK(same_shape(full, shape_of(again, used, buf)));
    }

    // Prefixes. A head that is complete in `buf` is incomplete in every
    // shorter prefix and complete, identically, in every longer one; an
    // error in `buf` is, in a prefix, incomplete or the same error.
    std::vector<std::size_t> lens = {0, 1, buf.size() / 2, seed % (buf.size() + 1),
                                     (seed >> 8) % (buf.size() + 1)};
    if (buf.size() > 0) lens.push_back(buf.size() - 1);
    if (r.status == d::ParseStatus::done) {
        lens.push_back(r.head_bytes - 1);
        lens.push_back(r.head_bytes);
        lens.push_back(r.head_bytes / 2);
        if (r.head_bytes < buf.size()) lens.push_back(r.head_bytes + 1);
    }
    // Just before and after a line break: where a line becomes complete.
    std::size_t nl = buf.find('\n', seed % (buf.size() + 1));
    if (nl != std::string_view::npos) {
        lens.push_back(nl);
        lens.push_back(nl + 1);
    }
    for (std::size_t len : lens) {
        if (len > buf.size()) continue;
        ExactCopy copy(buf.substr(0, len));
        d::RequestHead ph;
        d::ParseResult pr = d::parse_request_head(copy.view(), lim, ph);
        check_parse(copy.view(), lim, pr, ph);
        const HeadShape ps = shape_of(pr, ph, copy.view());
        switch (r.status) {
        case d::ParseStatus::done:
            if (len >= r.head_bytes) {
                FUZZ_CHECK(same_shape(full, ps)); // same head, same head_bytes
            } else {
                FUZZ_CHECK(pr.status == d::ParseStatus::incomplete);
            }
            break;
        case d::ParseStatus::error:
            FUZZ_CHECK(pr.status == d::ParseStatus::incomplete ||
                       (pr.status == d::ParseStatus::error && pr.http_status == r.http_status));
            break;
        case d::ParseStatus::incomplete:
            FUZZ_CHECK(pr.status == d::ParseStatus::incomplete);
            break;
        }
    }
    return r;
}

// ---- frame_request, against an independent reading of RFC 9112 §6 ----

void check_framing(const d::RequestHead& h, const d::Framing& f, std::size_t max_body) {
    FUZZ_CHECK(f.error_status == 0 || f.error_status == 400 || f.error_status == 413 ||
               f.error_status == 417 || f.error_status == 501);
    // One body framing, never two.
    if (f.body == d::BodyKind::chunked) FUZZ_CHECK(f.content_length == 0);
    if (f.body == d::BodyKind::length) FUZZ_CHECK(f.content_length > 0);
    if (f.body == d::BodyKind::none) FUZZ_CHECK(f.content_length == 0);

    int hosts = 0;
    bool has_te = false, has_cl = false, any_close = false, any_keep_alive = false;
    bool bad_expect = false, continue_expected = false;
    std::vector<std::string_view> codings;
    bool cl_valid = true, cl_dont_care = false, cl_have = false, empty_origin_host = false;
    std::uint64_t cl = 0;
    for (const d::FieldView& fv : h.fields) {
        if (d::iequals(fv.name, "host")) {
            ++hosts;
            if (fv.value.empty() && h.target.front() == '/') empty_origin_host = true;
        } else if (d::iequals(fv.name, "transfer-encoding")) {
            has_te = true;
            for (std::string_view c : list_items(fv.value)) codings.push_back(c);
        } else if (d::iequals(fv.name, "content-length")) {
            has_cl = true;
            std::vector<std::string_view> items = list_items(fv.value);
            if (items.empty()) cl_valid = false; // "" or "," or ", ,": no length at all
            for (std::string_view item : items) {
                if (item.size() > 19) { // beyond 64 bits or leading zeros: either way is fine
                    cl_dont_care = true;
                    continue;
                }
                if (!is_digits(item)) {
                    cl_valid = false;
                    continue;
                }
                std::uint64_t val = std::strtoull(std::string(item).c_str(), nullptr, 10);
                if (cl_have && val != cl) cl_valid = false;
                cl = val;
                cl_have = true;
            }
        } else if (d::iequals(fv.name, "connection")) {
            for (std::string_view o : list_items(fv.value)) {
                if (d::iequals(o, "close")) any_close = true;
                if (d::iequals(o, "keep-alive")) any_keep_alive = true;
            }
        } else if (d::iequals(fv.name, "expect")) {
            if (d::iequals(fv.value, "100-continue")) continue_expected = true;
            else bad_expect = true;
        }
    }

    // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host; never two.
    if (hosts > 1 || (h.version_minor == 1 && hosts == 0)) FUZZ_CHECK(f.error_status == 400);
    // ... and an origin-form target has an authority: its Host is not empty.
    if (empty_origin_host) FUZZ_CHECK(f.error_status == 400);
    // RFC 9112 §6.1: Transfer-Encoding with Content-Length is rejected
    // (request smuggling), as is Transfer-Encoding in HTTP/1.0.
    if (has_te && has_cl) FUZZ_CHECK(f.error_status == 400);
    if (has_te && h.version_minor == 0) FUZZ_CHECK(f.error_status == 400);
    // A chunked body only when chunked was announced, and no length with it.
    if (f.body == d::BodyKind::chunked) FUZZ_CHECK(has_te && !has_cl);
    if (f.body == d::BodyKind::length) FUZZ_CHECK(has_cl && !has_te);
    if (!has_te && !has_cl) FUZZ_CHECK(f.body == d::BodyKind::none);
    if (has_te && f.error_status == 0) {
        // Accepted codings: chunked, once, last (and nothing we can't decode).
        FUZZ_CHECK(f.body == d::BodyKind::chunked);
        FUZZ_CHECK(codings.size() == 1 && d::iequals(codings[0], "chunked"));
    }
    // RFC 9112 §6.3: an invalid Content-Length is an unrecoverable error.
    if (has_cl && !has_te && !cl_dont_care) {
        if (!cl_valid) {
            FUZZ_CHECK(f.error_status == 400);
        } else {
            FUZZ_CHECK(cl_have);
            if (f.error_status == 0 || f.error_status == 417 || f.error_status == 413) {
                if (cl > 0) FUZZ_CHECK(f.body == d::BodyKind::length && f.content_length == cl);
                else FUZZ_CHECK(f.body == d::BodyKind::none);
            }
        }
    }
    // A body larger than max_body is never accepted.
    if (f.body == d::BodyKind::length && f.content_length > max_body)
        FUZZ_CHECK(f.error_status != 0);
    if (f.error_status == 413)
        FUZZ_CHECK(f.body == d::BodyKind::length && f.content_length > max_body);
    // RFC 9110 §10.1.1: only 100-continue is understood (417 for anything
    // else in HTTP/1.1; HTTP/1.0 may ignore it), and a server MUST ignore
    // 100-continue from HTTP/1.0: a 1.0 client cannot read a 1xx response.
    if (f.expect_continue) FUZZ_CHECK(continue_expected);
    if (h.version_minor == 0) FUZZ_CHECK(!f.expect_continue);
    if (h.version_minor == 1 && bad_expect) FUZZ_CHECK(f.error_status != 0);
    if (h.version_minor == 1 && continue_expected && !bad_expect && f.error_status == 0)
        FUZZ_CHECK(f.expect_continue);
    if (f.error_status == 417) FUZZ_CHECK(bad_expect);
    // RFC 9112 §9.3: "close" always wins; HTTP/1.1 persists by default,
    // HTTP/1.0 only with keep-alive.
    if (any_close) FUZZ_CHECK(!f.keep_alive);
    if (h.version_minor == 1 && !any_close) FUZZ_CHECK(f.keep_alive);
    if (h.version_minor == 0) FUZZ_CHECK(f.keep_alive == (any_keep_alive && !any_close));
}

// ---- percent_decode, against an independent decoder ----

bool ref_percent_decode(std::string_view in, std::string& out, bool plus_is_space) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%') {
            if (in.size() - i < 3) return false;
            int hi = d::hex_value(in[i + 1]), lo = d::hex_value(in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
            out.push_back(static_cast<char>(hi << 4 | lo));
            i += 2;
        } else {
            out.push_back(plus_is_space && in[i] == '+' ? ' ' : in[i]);
        }
    }
    return true;
}

void check_percent_decode(std::string_view in) {
    for (bool plus : {false, true}) {
        ExactCopy copy(in);
        std::string out = "stale";
        bool ok = d::percent_decode(copy.view(), out, plus);
        std::string ref;
        bool ref_ok = ref_percent_decode(in, ref, plus);
        FUZZ_CHECK(ok == ref_ok);
        if (!ok) continue;
        FUZZ_CHECK(out == ref);
        FUZZ_CHECK(out.size() <= in.size());
        if (in.find('\0') == std::string_view::npos) FUZZ_CHECK(out.find('\0') == std::string::npos);
        // Round trip: escaping every byte and decoding gives the bytes back.
        std::string esc;
        static const char hex[] = "0123456789ABCDEF";
        for (unsigned char c : out) {
            if (c == 0) continue; // not encodable
            esc += '%';
            esc += hex[c >> 4];
            esc += hex[c & 15];
        }
        std::string back;
        FUZZ_CHECK(d::percent_decode(esc, back, plus));
        std::string expect;
        for (char c : out)
            if (c != '\0') expect += c;
        FUZZ_CHECK(back == expect);
    }
}

// ---- match_route, against an independent matcher ----

struct TestRoute {
    const char* pattern;
    d::Route route;
};

std::vector<TestRoute>& routes() {
    static std::vector<TestRoute> rs = [] {
        std::vector<TestRoute> v;
        for (const char* p : {"/", "/users/{id}", "/users/{id}/posts/{post}", "/static/{path...}",
                              "/{all...}", "/a/b/c", "/a/{x}/c", "*", "/files/{name}/",
                              "/{x}", "/{x}/{y}/z"}) {
            TestRoute t;
            t.pattern = p;
            t.route.method = "GET";
            t.route.segments = d::split_path(p); // as Server::handle does
            if (std::string_view(p) == "*") t.route.segments = {"*"};
            v.push_back(std::move(t));
        }
        return v;
    }();
    return rs;
}

std::vector<std::string> split_slash(std::string_view s) {
    std::vector<std::string> parts;
    for (;;) {
        std::size_t slash = s.find('/');
        parts.emplace_back(s.substr(0, slash));
        if (slash == std::string_view::npos) return parts;
        s.remove_prefix(slash + 1);
    }
}

bool ref_match(const std::vector<std::string>& segs, std::string_view path,
               std::vector<std::pair<std::string, std::string>>& params) {
    params.clear();
    if (segs.size() == 1 && segs[0] == "*" && path == "*") return true;
    if (path.empty() || path.front() != '/') return false;
    std::vector<std::string> parts = split_slash(path.substr(1));
    const bool wild = !segs.empty() && d::is_wildcard(segs.back());
    const std::size_t fixed = wild ? segs.size() - 1 : segs.size();
    if (wild ? parts.size() < segs.size() : parts.size() != segs.size()) return false;
    for (std::size_t i = 0; i < fixed; ++i) {
        if (d::is_param(segs[i])) {
            if (parts[i].empty()) return false;
            params.emplace_back(segs[i].substr(1, segs[i].size() - 2), parts[i]);
        } else if (parts[i] != segs[i]) {
            return false;
        }
    }
    if (wild) {
        std::string rest;
        for (std::size_t i = fixed; i < parts.size(); ++i) {
            if (i > fixed) rest += '/';
            rest += parts[i];
        }
        params.emplace_back(segs.back().substr(1, segs.back().size() - 5), rest);
    }
    return true;
}

void check_routes(std::string_view path) {
    std::vector<std::pair<std::string, std::string>> params, ref;
    for (const TestRoute& t : routes()) {
        params.assign(1, {"stale", "param"});
        bool m = d::match_route(t.route, path, params);
        bool rm = ref_match(t.route.segments, path, ref);
        FUZZ_CHECK(m == rm);
        if (m) FUZZ_CHECK(params == ref); // params are unspecified on a miss
    }
}

// ---- parse_target ----

void check_target(const d::RequestHead& h) {
    gh::Request req;
    req.path = "stale";
    req.query = "stale";
    bool ok = d::parse_target(h.target, h.method, req);
    if (h.target == "*") FUZZ_CHECK(ok == (h.method == "OPTIONS"));
    if (ok) {
        FUZZ_CHECK(!req.path.empty());
        if (h.target != "*") FUZZ_CHECK(req.path.front() == '/');
        FUZZ_CHECK(req.path.find('\0') == std::string::npos);
        FUZZ_CHECK(req.query.size() < h.target.size());
        // The query is the raw text after the first '?' of the path part.
        if (h.target.front() == '/') {
            std::size_t q = h.target.find('?');
            FUZZ_CHECK(req.query == (q == std::string_view::npos ? std::string_view()
                                                                 : h.target.substr(q + 1)));
        }
        check_routes(req.path);
        (void)req.query_param("a");
        (void)req.query_param("");
    } else if (h.target.front() == '/') {
        // Origin-form fails only on a bad escape in the path.
        std::string tmp;
        std::size_t q = h.target.find('?');
        FUZZ_CHECK(!d::percent_decode(h.target.substr(0, q), tmp, false));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    std::size_t seed = 0;
    for (std::size_t i = 0; i < size && i < 4; ++i) seed = seed * 131 + data[i];
    seed ^= size * 0x9e3779b9u;

    // Also exercise the helpers on raw bytes, not only on parsed targets.
    if (size <= 512) {
        check_percent_decode(all);
        check_routes(all);
    }

    // The limits the server uses by default, and tight ones (Options
    // allow max_request_line_bytes >= 64, max_header_bytes >= 1 KiB).
    const d::HeadLimits defaults{};
    const d::HeadLimits tight{64, 1024};

    std::size_t off = 0;
    for (int n = 0; n < kMaxRequests && off < size; ++n) {
        // Each request's head starts where the previous message ended;
        // parse an exactly-sized copy so over-reads are caught.
        ExactCopy rest(all.substr(off));
        const std::string_view buf = rest.view();
        d::RequestHead tight_head;
        (void)check_head(buf, tight, tight_head, seed + static_cast<std::size_t>(n));
        d::RequestHead head;
        d::ParseResult r = check_head(buf, defaults, head, seed + static_cast<std::size_t>(n));
        if (r.status != d::ParseStatus::done) break;

        const d::Framing f = d::frame_request(head, kMaxBody);
        check_framing(head, f, kMaxBody);
        // Framing depends on the head only: the same for a generous limit.
        const d::Framing f2 = d::frame_request(head, SIZE_MAX);
        FUZZ_CHECK(f2.body == f.body && f2.content_length == f.content_length &&
                   f2.keep_alive == f.keep_alive && f2.expect_continue == f.expect_continue);
        FUZZ_CHECK(f2.error_status == (f.error_status == 413 ? 0 : f.error_status));
        check_target(head);
        if (f.error_status != 0) break; // the server answers and closes

        off += r.head_bytes;
        if (f.body == d::BodyKind::length) {
            if (f.content_length > size - off) break; // body not all here
            off += static_cast<std::size_t>(f.content_length);
        } else if (f.body == d::BodyKind::chunked) {
            fuzz::ChunkedOutcome c = fuzz::check_chunked_splits(
                all.substr(off), seed + off, kMaxBody, 64 * 1024, /*byte_by_byte_limit=*/256);
            if (c.status != fuzz::ChunkedDecoder::Status::done) break;
            FUZZ_CHECK(c.consumed <= size - off);
            off += c.consumed;
        }
        if (!f.keep_alive) break;
    }
    return 0;
}
