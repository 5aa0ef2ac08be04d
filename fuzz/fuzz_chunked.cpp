// fuzz/fuzz_chunked.cpp -- libFuzzer target: detail::ChunkedDecoder.
//
// The input is a chunked request body (RFC 9112 §7.1), possibly followed
// by the next request. The target checks that:
//   - feeding it whole, split at positions derived from the first byte,
//     split twice, byte by byte (with empty feeds in between), and with a
//     null output (discarding) gives the same status, http_status, total
//     consumed, total() and decoded bytes;
//   - the constructor's max_body is enforced: total() never exceeds it, a
//     body within it decodes exactly as without a limit, one beyond it
//     fails with 413 (and decodes a prefix of the same data until then);
//   - a smaller max_meta only turns the outcome into an earlier error;
//   - a valid encoding built from the input (random chunk sizes, hex case,
//     leading zeros, extensions, trailers) decodes to exactly its data.
//
// Build and run: bash fuzz/run.sh SECONDS (from the repository root).
#include "fuzz_util.hpp"

#include <cctype> // isxdigit

using fuzz::ChunkedDecoder;
using fuzz::ChunkedOutcome;
using Status = ChunkedDecoder::Status;

namespace {

constexpr std::size_t kMeta = 64 * 1024;      // the server passes max_header_bytes
constexpr std::size_t kByteByByteLimit = 4096; // every input, at libFuzzer's default max_len

// `limited` is the same input decoded under a tighter limit than `free`:
// it may only stop earlier, with `status`, having decoded a prefix.
void check_tighter(const ChunkedOutcome& free, const ChunkedOutcome& limited,
                   std::initializer_list<int> statuses) {
    if (fuzz::same_outcome(free, limited, true)) return;
    FUZZ_CHECK(limited.status == Status::error);
    bool allowed = false;
    for (int s : statuses) allowed = allowed || limited.http_status == s;
    FUZZ_CHECK(allowed);
    FUZZ_CHECK(limited.consumed <= free.consumed);
    FUZZ_CHECK(limited.total <= free.total);
    FUZZ_CHECK(free.out.compare(0, limited.out.size(), limited.out) == 0);
}

struct Rng {
    std::uint64_t s;
    std::uint32_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return static_cast<std::uint32_t>(s);
    }
};

// encode builds a valid chunked message carrying `body`.
std::string encode(std::string_view body, Rng& rng) {
    static const char lower[] = "0123456789abcdef", upper[] = "0123456789ABCDEF";
    static const char* const exts[] = {";a", ";name=value", ";q=\"quoted; string\"", " ;bws",
                                       "\t;tab=1", ";a;b;c=d", "; a = \"q\\\"p\"", ";a=b \t;c"};
    static const char* const trailers[] = {"X-Checksum: abc", "Expires: 0", "T:", "T: \tv\t",
                                           "Server-Timing: x;dur=1"};
    std::string enc;
    std::size_t i = 0;
    auto size_line = [&](std::size_t k) {
        const char* digits = rng.next() % 2 ? lower : upper;
        std::string hex;
        do {
            hex.insert(hex.begin(), digits[k % 16]);
            k /= 16;
        } while (k > 0);
        std::size_t zeros = rng.next() % 4; // leading zeros, within 15 digits
        if (hex.size() + zeros <= 15) hex.insert(0, zeros, '0');
        enc += hex;
        if (rng.next() % 4 == 0) enc += exts[rng.next() % (sizeof exts / sizeof *exts)];
        enc += "\r\n";
    };
    while (i < body.size()) {
        std::size_t k = 1 + rng.next() % (rng.next() % 2 ? 8 : 300);
        if (k > body.size() - i) k = body.size() - i;
        size_line(k);
        enc.append(body.substr(i, k));
        enc += "\r\n";
        i += k;
    }
    size_line(0);
    for (std::uint32_t t = rng.next() % 3; t > 0; --t) {
        enc += trailers[rng.next() % (sizeof trailers / sizeof *trailers)];
        enc += "\r\n";
    }
    enc += "\r\n";
    return enc;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const std::size_t first = size > 0 ? data[0] : 0;
    const std::size_t last = size > 0 ? data[size - 1] : 0;
    // The split position: derived from the first byte, spread over the input.
    const std::size_t split_seed = first * 2654435761u + size;

    // 1. Without a body limit: split-invariance, byte by byte, discarding.
    const ChunkedOutcome free =
        fuzz::check_chunked_splits(in, split_seed, SIZE_MAX, kMeta, kByteByByteLimit);

    // 2. With a body limit around the decoded size (below, at, above).
    const std::size_t m = static_cast<std::size_t>((last * 31 + first) % (free.total + 3));
    const ChunkedOutcome lim = fuzz::check_chunked_splits(in, split_seed, m, kMeta, 512);
    FUZZ_CHECK(lim.total <= m);
    if (free.status == Status::done && free.total <= m) FUZZ_CHECK(fuzz::same_outcome(free, lim, true));
    if (free.total > m) FUZZ_CHECK(lim.status == Status::error && lim.http_status == 413);
    check_tighter(free, lim, {413});
    // A zero limit accepts only an empty body.
    const ChunkedOutcome zero = fuzz::run_chunked(in, fuzz::cuts_whole(size), 0, kMeta, false);
    if (free.status == Status::done && free.total == 0) FUZZ_CHECK(fuzz::same_outcome(free, zero, true));
    check_tighter(free, zero, {413});
    FUZZ_CHECK(zero.total == 0);

    // 3. A small extension/trailer budget only makes it fail earlier.
    const std::size_t mm = first % 40;
    const ChunkedOutcome meta = fuzz::check_chunked_splits(in, split_seed, SIZE_MAX, mm, 512);
    check_tighter(free, meta, {400, 431});

    // 4. A valid encoding of the input decodes to exactly the input.
    Rng rng{(static_cast<std::uint64_t>(first) << 32) ^ (last << 8) ^ size ^ 0x2545f4914f6cdd1dULL};
    const std::string_view body = in.substr(0, 2048);
    const std::string enc = encode(body, rng);
    const std::string follow = enc + "GET / HTTP/1.1\r\n"; // a pipelined request after it
    const ChunkedOutcome ok =
        fuzz::check_chunked_splits(follow, split_seed, SIZE_MAX, kMeta, 1024);
    FUZZ_CHECK(ok.status == Status::done);
    FUZZ_CHECK(ok.consumed == enc.size());
    FUZZ_CHECK(ok.out == body);
    FUZZ_CHECK(ok.total == body.size());
    // Exactly at the limit is fine; one byte less is 413.
    const ChunkedOutcome at = fuzz::run_chunked(follow, fuzz::cuts_at(rng.next() % (follow.size() + 1), follow.size()),
                                                body.size(), kMeta, false);
    FUZZ_CHECK(fuzz::same_outcome(ok, at, true));
    if (!body.empty()) {
        const ChunkedOutcome over =
            fuzz::run_chunked(follow, fuzz::cuts_whole(follow.size()), body.size() - 1, kMeta, false);
        FUZZ_CHECK(over.status == Status::error && over.http_status == 413);
        FUZZ_CHECK(over.total < body.size());
    }
    // 5. The same encoding with a chunk line broken after its size digits
    // (RFC 9112 §7.1.1 grammar) is refused with 400 at that line.
    static const char* const broken[] = {";", ";a b", ";=x", " ", "\t", ";a=", ";a=\"x", "; ;a",
                                         ";a=b c", ";a\x01", ";a=\"\x7f\""};
    const std::size_t eol = enc.find("\r\n");
    std::size_t digits = 0;
    while (digits < eol && std::isxdigit(static_cast<unsigned char>(enc[digits]))) ++digits;
    const std::string bad = enc.substr(0, digits) + broken[rng.next() % (sizeof broken / sizeof *broken)] +
                            enc.substr(eol);
    const ChunkedOutcome refused = fuzz::check_chunked_splits(bad, split_seed, SIZE_MAX, kMeta, 256);
    FUZZ_CHECK(refused.status == Status::error && refused.http_status == 400);
    FUZZ_CHECK(refused.total == 0);
    return 0;
}
