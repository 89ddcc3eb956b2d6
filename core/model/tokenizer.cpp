// Byte-level BPE tokenizer (GPT-2 family): vocabulary and merges from GGUF
// metadata or a Hugging Face tokenizer.json, a hand-written pre-tokenizer for
// the regexes the supported models use (std::regex has no \p{..}), and
// rank-ordered merges as in Hugging Face tokenizers' BPE model.
//
// Invalid UTF-8 in the input: every byte that is not part of a valid UTF-8
// sequence stands alone as a "punctuation-like" unit (in none of \p{L}, \p{N},
// \s), and is mapped through the byte-level alphabet like any other byte. So
// encode never fails on bytes, and decode(encode(x)) == x for every input.
#include "model/tokenizer.h"
#include "model/tokenizer_impl.h"

#include "base/error.h"
#include "base/json_read.h"
#include "io/gguf.h"
#include "model/unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <queue>
#include <unordered_map>
#include <sys/stat.h>

namespace attnlab {

// ---------------------------------------------------------------------------
// unicode helpers (declared in model/unicode.h; the tables are generated)
// ---------------------------------------------------------------------------
namespace unicode {

bool in_ranges(uint32_t cp, const cp_range * r, size_t n) {
    size_t lo = 0, hi = n;
    while (lo < hi) { // first range with hi >= cp
        size_t mid = (lo + hi) / 2;
        if (r[mid].hi < cp) lo = mid + 1; else hi = mid;
    }
    return lo < n && r[lo].lo <= cp;
}

uint8_t cp_classify(uint32_t cp) {
    if (cp < 0x80) { // ASCII fast path: almost all of the text we see
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CP_LETTER;
        if (cp >= '0' && cp <= '9') return CP_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CP_SPACE;
        return CP_OTHER;
    }
    if (cp > 0x10FFFF) return CP_OTHER; // invalid_cp
    if (in_ranges(cp, letter_ranges, letter_ranges_count)) return CP_LETTER;
    if (in_ranges(cp, number_ranges, number_ranges_count)) return CP_NUMBER;
    if (in_ranges(cp, space_ranges, space_ranges_count)) return CP_SPACE;
    return CP_OTHER;
}

size_t utf8_decode(const char * s, size_t n, size_t pos, uint32_t & cp) {
    const auto * u = reinterpret_cast<const unsigned char *>(s);
    const unsigned c = u[pos];
    cp = invalid_cp;
    if (c < 0x80) { cp = c; return 1; }
    size_t len;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0)      { len = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 1;
    if (pos + len > n) return 1;
    for (size_t k = 1; k < len; ++k) {
        const unsigned cc = u[pos + k];
        if ((cc & 0xC0) != 0x80) return 1;
        v = (v << 6) | (cc & 0x3F);
    }
    // overlong forms, surrogates and values past U+10FFFF are not UTF-8
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 1;
    cp = v;
    return len;
}

void utf8_append(std::string & out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

bool utf8_valid(const char * s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += utf8_decode(s, n, i, cp);
        if (cp == invalid_cp) return false;
    }
    return true;
}

} // namespace unicode

namespace {

using unicode::CP_LETTER;
using unicode::CP_NUMBER;
using unicode::CP_OTHER;
using unicode::CP_SPACE;

// ---------------------------------------------------------------------------
// GPT-2 byte-level alphabet: every byte gets a printable code point, so that
// the vocabulary is made of ordinary strings ("Ġ" is the space byte).
// ---------------------------------------------------------------------------
struct byte_alphabet {
    uint32_t byte_to_cp[256];
    std::string byte_to_utf8[256];
    std::unordered_map<uint32_t, uint8_t> cp_to_byte;

    byte_alphabet() {
        uint32_t extra = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            byte_to_cp[b] = printable ? uint32_t(b) : 256 + extra++;
            unicode::utf8_append(byte_to_utf8[b], byte_to_cp[b]);
            cp_to_byte[byte_to_cp[b]] = uint8_t(b);
        }
    }
};

const byte_alphabet & alphabet() {
    static const byte_alphabet a;
    return a;
}

void decode_text(std::string_view s, cp_text & t) {
    t.cp.clear(); t.off.clear(); t.cls.clear();
    t.cp.reserve(s.size()); t.off.reserve(s.size() + 1); t.cls.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        uint32_t cp;
        const size_t len = unicode::utf8_decode(s.data(), s.size(), i, cp);
        t.cp.push_back(cp);
        t.off.push_back(uint32_t(i));
        t.cls.push_back(unicode::cp_classify(cp));
        i += len;
    }
    t.off.push_back(uint32_t(s.size()));
}

inline uint32_t lower_ascii(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// Length (in code points) of an English contraction at pos ('s 't 're 've 'm
// 'll 'd), or 0. GPT-2's regex is case-sensitive; llama3's is not.
size_t match_contraction(const cp_text & t, size_t pos, size_t end, bool ignore_case) {
    if (t.cp[pos] != '\'' || pos + 1 >= end) return 0;
    auto at = [&](size_t i) { return ignore_case ? lower_ascii(t.cp[i]) : t.cp[i]; };
    const uint32_t c1 = at(pos + 1);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (pos + 2 < end) {
        const uint32_t c2 = at(pos + 2);
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    }
    return 0;
}

// Emits [begin, end) of t split by the GPT-2 regex, as code-point ranges.
template <typename F>
void split_gpt2(const cp_text & t, size_t begin, size_t end, F && emit) {
    const auto & cls = t.cls;
    size_t pos = begin;
    while (pos < end) {
        const uint32_t c = t.cp[pos];
        const bool sp_prefix = c == ' ' && pos + 1 < end;
        size_t len = match_contraction(t, pos, end, false);
        if (len == 0) {
            // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional space, then a run of one class
            uint8_t k = 0xFF;
            size_t p = pos;
            if (cls[pos] != CP_SPACE) k = cls[pos];
            else if (sp_prefix && cls[pos + 1] != CP_SPACE) { k = cls[pos + 1]; p = pos + 1; }
            if (k != 0xFF) {
                while (p < end && cls[p] == k) ++p;
                len = p - pos;
            }
        }
        if (len == 0) {
            // "\s+(?!\S)|\s+": a whitespace run; when non-space follows, the
            // last whitespace is left for the next token (it may be its " ?").
            size_t q = pos;
            while (q < end && cls[q] == CP_SPACE) ++q;
            len = (q < end && q - pos > 1) ? q - 1 - pos : q - pos;
        }
        emit(pos, pos + len);
        pos += len;
    }
}

// Emits [begin, end) split by the llama3 regex (max_digits 3) or qwen2's (1).
template <typename F>
void split_llama3(const cp_text & t, size_t begin, size_t end, size_t max_digits, F && emit) {
    const auto & cls = t.cls;
    auto is_crlf = [&](size_t i) { return t.cp[i] == '\r' || t.cp[i] == '\n'; };
    size_t pos = begin;
    while (pos < end) {
        size_t len = match_contraction(t, pos, end, true);
        if (len == 0) { // [^\r\n\p{L}\p{N}]?\p{L}+
            size_t p = pos;
            if (cls[p] != CP_LETTER && cls[p] != CP_NUMBER && !is_crlf(p) && p + 1 < end && cls[p + 1] == CP_LETTER) ++p;
            if (cls[p] == CP_LETTER) {
                while (p < end && cls[p] == CP_LETTER) ++p;
                len = p - pos;
            }
        }
        if (len == 0 && cls[pos] == CP_NUMBER) { // \p{N}{1,max}
            size_t p = pos;
            while (p < end && cls[p] == CP_NUMBER && p - pos < max_digits) ++p;
            len = p - pos;
        }
        if (len == 0) { // " ?[^\s\p{L}\p{N}]+[\r\n]*"
            size_t p = pos;
            if (t.cp[p] == ' ' && p + 1 < end && cls[p + 1] == CP_OTHER) ++p;
            if (cls[p] == CP_OTHER) {
                while (p < end && cls[p] == CP_OTHER) ++p;
                while (p < end && is_crlf(p)) ++p;
                len = p - pos;
            }
        }
        if (len == 0) { // here cls[pos] is CP_SPACE
            size_t q = pos;
            while (q < end && cls[q] == CP_SPACE) ++q;
            // "\s*[\r\n]+": up to the last \r or \n of the run
            size_t last_nl = SIZE_MAX;
            for (size_t i = pos; i < q; ++i) if (is_crlf(i)) last_nl = i;
            if (last_nl != SIZE_MAX) len = last_nl + 1 - pos;
            else len = (q < end && q - pos > 1) ? q - 1 - pos : q - pos; // "\s+(?!\S)|\s+"
        }
        emit(pos, pos + len);
        pos += len;
    }
}

// A merge rule's rank and the token it makes.
} // namespace

// ---------------------------------------------------------------------------
// impl
// ---------------------------------------------------------------------------

void bpe_tokenizer::impl::finish() {
    const auto & ab = alphabet();
    const size_t n = tokens.size();
    pieces.assign(n, std::string());
    token_to_id.clear();
    token_to_id.reserve(n * 2);
    for (size_t i = 0; i < n; ++i) {
        const std::string & s = tokens[i];
        if (kinds[i] == TOK_CONTROL || kinds[i] == TOK_USER) {
            pieces[i] = s; // added tokens are stored as plain text
        } else if (spm) {
            // "▁" is a space; <0xXX> is its byte.
            const int b = spm_byte_of(s);
            if (b >= 0) {
                pieces[i] = std::string(1, char(b));
            } else {
                for (size_t k = 0; k < s.size();) {
                    if (s.compare(k, 3, k_spm_space) == 0) { pieces[i] += ' '; k += 3; }
                    else pieces[i] += s[k++];
                }
            }
        } else {
            // Undo the byte-level mapping. A character outside the alphabet
            // (not seen in GPT-2-style vocabularies) is kept as its UTF-8.
            std::string & out = pieces[i];
            for (size_t k = 0; k < s.size();) {
                uint32_t cp;
                const size_t len = unicode::utf8_decode(s.data(), s.size(), k, cp);
                auto it = ab.cp_to_byte.find(cp);
                if (it != ab.cp_to_byte.end()) out += char(it->second);
                else out.append(s, k, len);
                k += len;
            }
        }
        // The first id wins for duplicate strings, as HF's vocab map would keep one.
        token_to_id.emplace(s, int32_t(i));
    }
    for (int b = 0; b < 256; ++b) {
        auto it = token_to_id.find(ab.byte_to_utf8[b]);
        byte_to_id[b] = it == token_to_id.end() ? -1 : it->second;
        char hex[8];
        std::snprintf(hex, sizeof hex, "<0x%02X>", b);
        auto ib = token_to_id.find(hex);
        byte_token[b] = ib == token_to_id.end() ? -1 : ib->second;
    }
    for (auto & v : specials_by_byte) v.clear();
    for (size_t i = 0; i < n; ++i) {
        if ((kinds[i] == TOK_CONTROL || kinds[i] == TOK_USER) && !tokens[i].empty()) {
            specials_by_byte[uint8_t(tokens[i][0])].emplace_back(tokens[i], int32_t(i));
        }
    }
    // Longest first, so the first hit at a position is the longest (HF matches leftmost-longest).
    for (auto & v : specials_by_byte) {
        std::stable_sort(v.begin(), v.end(), [](const auto & a, const auto & b) { return a.first.size() > b.first.size(); });
    }
}

template <typename F>
void bpe_tokenizer::impl::pre_tokenize(const cp_text & t, F && emit) const {
    const size_t n = t.cp.size();
    switch (pre) {
    case pre_kind::gpt2:
        split_gpt2(t, 0, n, emit);
        break;
    case pre_kind::smollm: {
        // Digits(individual_digits=true) first: each \p{N} is a piece of its
        // own; the GPT-2 regex then runs on every piece separately.
        size_t start = 0;
        for (size_t i = 0; i < n; ++i) {
            if (t.cls[i] != CP_NUMBER) continue;
            if (start < i) split_gpt2(t, start, i, emit);
            emit(i, i + 1);
            start = i + 1;
        }
        if (start < n) split_gpt2(t, start, n, emit);
        break;
    }
    case pre_kind::llama3:
        split_llama3(t, 0, n, 3, emit);
        break;
    case pre_kind::qwen2:
        split_llama3(t, 0, n, 1, emit);
        break;
    }
}

// BPE on one pre-token: start from one symbol per byte and keep merging the
// adjacent pair of lowest rank (leftmost on ties), as HF's Word::merge_all does.
void bpe_tokenizer::impl::bpe_word(std::string_view word, std::vector<int32_t> & out) const {
    if (ignore_merges) {
        std::string mapped;
        for (unsigned char b : word) mapped += alphabet().byte_to_utf8[b];
        auto it = token_to_id.find(mapped);
        if (it != token_to_id.end()) { out.push_back(it->second); return; }
    }
    std::vector<int32_t> ids;
    ids.reserve(word.size());
    for (unsigned char b : word) {
        // A byte missing from the vocabulary is dropped, as HF's BPE does
        // without an unk token. Byte-level vocabularies hold all 256.
        if (byte_to_id[b] >= 0) ids.push_back(byte_to_id[b]);
    }
    merge_symbols(ids, out);
}

// Keeps merging the adjacent pair of lowest rank (leftmost on ties) of the
// symbols ids, as HF's Word::merge_all does; appends the result to out.
void bpe_tokenizer::impl::merge_symbols(std::vector<int32_t> & ids, std::vector<int32_t> & out) const {
    struct symbol { int32_t id; int32_t prev, next; };
    std::vector<symbol> sym;
    sym.reserve(ids.size());
    for (int32_t id : ids) {
        const int32_t i = int32_t(sym.size());
        sym.push_back({id, i - 1, i + 1});
    }
    if (sym.empty()) return;
    sym.back().next = -1;

    struct cand {
        int32_t rank, left, right, new_id;
        bool operator>(const cand & o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<cand, std::vector<cand>, std::greater<cand>> q;
    auto try_pair = [&](int32_t l) {
        if (l < 0) return;
        const int32_t r = sym[l].next;
        if (r < 0) return;
        auto it = merges.find(pair_key(sym[l].id, sym[r].id));
        if (it != merges.end()) q.push({it->second.rank, l, r, it->second.id});
    };
    for (int32_t i = 0; i + 1 < int32_t(sym.size()); ++i) try_pair(i);

    std::vector<bool> dead(sym.size(), false);
    while (!q.empty()) {
        const cand c = q.top();
        q.pop();
        // Stale entries: a side was merged away or changed since the push.
        if (dead[c.left] || dead[c.right] || sym[c.left].next != c.right) continue;
        auto it = merges.find(pair_key(sym[c.left].id, sym[c.right].id));
        if (it == merges.end() || it->second.id != c.new_id) continue;
        sym[c.left].id = c.new_id;
        sym[c.left].next = sym[c.right].next;
        if (sym[c.right].next >= 0) sym[sym[c.right].next].prev = c.left;
        dead[c.right] = true;
        try_pair(sym[c.left].prev);
        try_pair(c.left);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

// SentencePiece-style BPE on one segment between added tokens: spaces to
// "▁" (and the "▁" prefix where the model's scheme puts one), one symbol per
// character, byte fallback, then the rank-ordered merges.
void bpe_tokenizer::impl::spm_segment(std::string_view seg, bool first, std::vector<int32_t> & out) const {
    std::string norm;
    for (char c : seg) {
        if (c == ' ') norm += k_spm_space;
        else norm += c;
    }
    const bool prefix = prepend == spm_prefix::every_segment || (prepend == spm_prefix::first_segment && first);
    if (prefix && !(prefix_if_missing && norm.compare(0, 3, k_spm_space) == 0)) norm.insert(0, k_spm_space);
    if (!scores.empty()) {
        spm_by_score(norm, out);
        return;
    }
    std::vector<int32_t> ids;
    for (size_t i = 0; i < norm.size();) {
        uint32_t cp;
        const size_t len = unicode::utf8_decode(norm.data(), norm.size(), i, cp);
        auto it = token_to_id.find(norm.substr(i, len));
        bool all_bytes = true;
        for (size_t k = 0; k < len; ++k) all_bytes = all_bytes && byte_token[uint8_t(norm[i + k])] >= 0;
        if (it != token_to_id.end() && kinds[it->second] == TOK_NORMAL) {
            ids.push_back(it->second);
        } else if (all_bytes) {
            for (size_t k = 0; k < len; ++k) ids.push_back(byte_token[uint8_t(norm[i + k])]);
        } else if (unk >= 0 && !(fuse_unk && !ids.empty() && ids.back() == unk)) {
            ids.push_back(unk);
        }
        i += len;
    }
    merge_symbols(ids, out);
}

void bpe_tokenizer::impl::spm_by_score(const std::string & norm, std::vector<int32_t> & out) const {
    struct symbol { size_t off, len; int32_t prev, next; };
    std::vector<symbol> sym;
    for (size_t i = 0; i < norm.size();) {
        uint32_t cp;
        const size_t len = unicode::utf8_decode(norm.data(), norm.size(), i, cp);
        const int32_t k = int32_t(sym.size());
        sym.push_back({i, len, k - 1, k + 1});
        i += len;
    }
    if (sym.empty()) return;
    sym.back().next = -1;
    struct bigram {
        float score;
        int32_t left, right;
        size_t len;
        bool operator<(const bigram & o) const { return score < o.score || (score == o.score && left > o.left); }
    };
    std::priority_queue<bigram> q;
    auto try_pair = [&](int32_t l, int32_t r) {
        if (l < 0 || r < 0) return;
        auto it = token_to_id.find(norm.substr(sym[l].off, sym[l].len + sym[r].len));
        if (it != token_to_id.end()) q.push({scores[size_t(it->second)], l, r, sym[l].len + sym[r].len});
    };
    for (int32_t i = 1; i < int32_t(sym.size()); ++i) try_pair(i - 1, i);
    while (!q.empty()) {
        const bigram b = q.top();
        q.pop();
        symbol & L = sym[size_t(b.left)];
        symbol & R = sym[size_t(b.right)];
        if (L.len == 0 || R.len == 0 || L.len + R.len != b.len) continue;   // stale
        L.len += R.len;
        R.len = 0;
        L.next = R.next;
        if (R.next >= 0) sym[size_t(R.next)].prev = b.left;
        try_pair(L.prev, b.left);
        try_pair(b.left, L.next);
    }
    // A symbol that is no token (a character outside the vocabulary) falls
    // back to its bytes' <0xXX> tokens, else unk.
    for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) {
        const std::string piece = norm.substr(sym[size_t(i)].off, sym[size_t(i)].len);
        auto it = token_to_id.find(piece);
        if (it != token_to_id.end()) { out.push_back(it->second); continue; }
        for (unsigned char c : piece)
            if (byte_token[c] >= 0) out.push_back(byte_token[c]);
            else if (unk >= 0) out.push_back(unk);
    }
}

// Adds merge rule number `rank` (a + b -> ab). Every part must be in the vocab,
// as HF's BPE builder requires.
void bpe_tokenizer::impl::add_merge(const std::string & field, int32_t rank, const std::string & a,
                                     const std::string & b) {
    impl & m = *this;
    auto ia = m.token_to_id.find(a);
    auto ib = m.token_to_id.find(b);
    auto iab = m.token_to_id.find(a + b);
    const char * missing = ia == m.token_to_id.end() ? "left part" : ib == m.token_to_id.end() ? "right part"
                           : iab == m.token_to_id.end() ? "merged token" : nullptr;
    if (missing) {
        throw input_error(m.source, field, std::string("merge '") + a + " " + b + "': " + missing +
                                               " is not in the vocabulary");
    }
    // A repeated pair keeps its first (best) rank, as HF does.
    m.merges.emplace(pair_key(ia->second, ib->second), merge_info{rank, iab->second});
}

// ---------------------------------------------------------------------------
// public API
// ---------------------------------------------------------------------------
bpe_tokenizer::bpe_tokenizer() : p_(std::make_unique<impl>()) {}
bpe_tokenizer::bpe_tokenizer(bpe_tokenizer &&) noexcept = default;
bpe_tokenizer & bpe_tokenizer::operator=(bpe_tokenizer &&) noexcept = default;
bpe_tokenizer::~bpe_tokenizer() = default;

std::vector<int32_t> bpe_tokenizer::encode(std::string_view text) const {
    const impl & m = *p_;
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 2);
    if (m.add_bos && m.bos >= 0) out.push_back(m.bos);

    // Per-call cache of word -> ids: natural text repeats its words a lot,
    // and a cache local to the call keeps encode() const and thread-safe.
    std::unordered_map<std::string, std::vector<int32_t>> cache;
    cp_text t;
    bool first = true;
    auto encode_plain = [&](std::string_view seg) {
        if (seg.empty()) return;
        if (m.spm) {
            m.spm_segment(seg, first, out);
            first = false;
            return;
        }
        decode_text(seg, t);
        m.pre_tokenize(t, [&](size_t a, size_t b) {
            const std::string_view w = seg.substr(t.off[a], t.off[b] - t.off[a]);
            if (w.size() > 64) { m.bpe_word(w, out); return; } // rare; not worth caching
            auto it = cache.find(std::string(w));
            if (it == cache.end()) {
                if (cache.size() > 100000) cache.clear();
                std::vector<int32_t> ids;
                m.bpe_word(w, ids);
                it = cache.emplace(std::string(w), std::move(ids)).first;
            }
            out.insert(out.end(), it->second.begin(), it->second.end());
        });
    };

    // Added tokens written literally in the text are cut out first (leftmost,
    // longest); the text between them is pre-tokenized and BPE-encoded.
    size_t seg_start = 0;
    for (size_t i = 0; i < text.size();) {
        const auto & cands = m.specials_by_byte[uint8_t(text[i])];
        const std::pair<std::string, int32_t> * hit = nullptr;
        for (const auto & c : cands) {
            if (text.compare(i, c.first.size(), c.first) == 0) { hit = &c; break; }
        }
        if (!hit) { ++i; continue; }
        encode_plain(text.substr(seg_start, i - seg_start));
        out.push_back(hit->second);
        first = false;
        i += hit->first.size();
        seg_start = i;
    }
    encode_plain(text.substr(seg_start));
    return out;
}

std::string bpe_tokenizer::decode(const std::vector<int32_t> & ids) const {
    std::string out;
    for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= n_vocab()) {
            throw input_error(p_->source, "ids[" + std::to_string(i) + "]",
                              "token id " + std::to_string(ids[i]) + " is outside the vocabulary (" +
                                  std::to_string(n_vocab()) + " tokens)");
        }
        out += p_->pieces[size_t(ids[i])];
    }
    // SentencePiece decoders drop the space the "▁" prefix stands for (Strip).
    for (int k = 0; k < p_->strip_lead && !out.empty() && out[0] == ' '; ++k) out.erase(0, 1);
    return out;
}

std::string bpe_tokenizer::token_piece(int32_t id) const {
    if (id < 0 || id >= n_vocab()) {
        throw input_error(p_->source, "token id", std::to_string(id) + " is outside the vocabulary (" +
                                                       std::to_string(n_vocab()) + " tokens)");
    }
    return p_->pieces[size_t(id)];
}

int32_t bpe_tokenizer::n_vocab() const { return int32_t(p_->tokens.size()); }
int32_t bpe_tokenizer::bos_id() const { return p_->bos; }
int32_t bpe_tokenizer::eos_id() const { return p_->eos; }
bool bpe_tokenizer::add_bos() const { return p_->add_bos; }
const std::string & bpe_tokenizer::pre_type() const { return p_->pre_name; }

// ---------------------------------------------------------------------------
// loading
// ---------------------------------------------------------------------------

// Splits a GGUF / tokenizer.json merge string "a b". Tokens never hold a
// plain space (it is "Ġ"), but a token may start with one in odd vocabularies:
// look for the separator after the first character, as llama.cpp does.
bool split_merge(const std::string & s, std::string & a, std::string & b) {
    const size_t sp = s.find(' ', 1);
    if (sp == std::string::npos || sp + 1 >= s.size()) return false;
    a = s.substr(0, sp);
    b = s.substr(sp + 1);
    return true;
}

pre_kind pre_from_name(const std::string & file, const std::string & field, const std::string & name) {
    if (name == "gpt2") return pre_kind::gpt2;
    if (name == "smollm") return pre_kind::smollm;
    if (name == "llama3" || name == "llama-v3" || name == "llama-bpe") return pre_kind::llama3;
    if (name == "qwen2") return pre_kind::qwen2;
    throw input_error(file, field, "unsupported pre-tokenizer type '" + name +
                                       "' (supported: gpt2, smollm, llama-bpe/llama3, qwen2)");
}

bpe_tokenizer bpe_tokenizer::from_gguf(const gguf_file & f) {
    bpe_tokenizer tok;
    impl & m = *tok.p_;
    m.source = f.path();

    const std::string model = f.get_str("tokenizer.ggml.model");
    if (model != "gpt2" && model != "llama") {
        throw input_error(m.source, "tokenizer.ggml.model",
                          "unsupported tokenizer model '" + model + "' (byte-level BPE 'gpt2', SentencePiece 'llama')");
    }
    m.spm = model == "llama";
    if (m.spm) {
        m.pre_name = "spm";
        // llama.cpp: a space before the text and after every special token.
        m.prepend = f.get_bool_or("tokenizer.ggml.add_space_prefix", true) ? spm_prefix::every_segment : spm_prefix::none;
        m.strip_lead = m.prepend == spm_prefix::none ? 0 : 1;
    } else if (!f.find("tokenizer.ggml.pre")) {
        throw input_error(m.source, "tokenizer.ggml.pre",
                          "missing: the pre-tokenizer type is needed to split text as the model was trained");
    }
    if (!m.spm) {
        m.pre_name = f.get_str("tokenizer.ggml.pre");
        m.pre = pre_from_name(m.source, "tokenizer.ggml.pre", m.pre_name);
    }
    // llama.cpp encodes llama3-style vocabularies with ignore_merges, as their tokenizer.json says.
    m.ignore_merges = m.pre == pre_kind::llama3;

    if (!f.find("tokenizer.ggml.tokens")) throw input_error(m.source, "tokenizer.ggml.tokens", "missing");
    m.tokens = f.get_str_array("tokenizer.ggml.tokens");
    if (m.tokens.empty()) throw input_error(m.source, "tokenizer.ggml.tokens", "empty vocabulary");
    if (m.tokens.size() > size_t(INT32_MAX)) throw input_error(m.source, "tokenizer.ggml.tokens", "too many tokens");
    m.kinds.assign(m.tokens.size(), TOK_NORMAL);
    if (f.find("tokenizer.ggml.token_type")) {
        const std::vector<int64_t> types = f.get_int_array("tokenizer.ggml.token_type");
        if (types.size() != m.tokens.size()) {
            throw input_error(m.source, "tokenizer.ggml.token_type",
                              std::to_string(types.size()) + " entries for " + std::to_string(m.tokens.size()) + " tokens");
        }
        for (size_t i = 0; i < types.size(); ++i) {
            if (types[i] < 1 || types[i] > 6) {
                throw input_error(m.source, "tokenizer.ggml.token_type[" + std::to_string(i) + "]",
                                  "unknown token type " + std::to_string(types[i]));
            }
            m.kinds[i] = uint8_t(types[i]);
        }
    }
    m.finish();

    if (m.spm) {
        if (!f.find("tokenizer.ggml.scores")) throw input_error(m.source, "tokenizer.ggml.scores", "missing: a SentencePiece vocabulary needs its scores");
        const std::vector<double> sc = f.get_float_array("tokenizer.ggml.scores");
        if (sc.size() != m.tokens.size())
            throw input_error(m.source, "tokenizer.ggml.scores",
                              std::to_string(sc.size()) + " entries for " + std::to_string(m.tokens.size()) + " tokens");
        m.scores.assign(sc.begin(), sc.end());
        if (f.find("tokenizer.ggml.unknown_token_id")) {
            const uint64_t u = f.get_u64("tokenizer.ggml.unknown_token_id");
            if (u < m.tokens.size()) m.unk = int32_t(u);
        }
    } else if (!f.find("tokenizer.ggml.merges")) {
        throw input_error(m.source, "tokenizer.ggml.merges", "missing: a BPE vocabulary needs its merge rules");
    }
    const std::vector<std::string> merges = m.spm ? std::vector<std::string>() : f.get_str_array("tokenizer.ggml.merges");
    m.merges.reserve(merges.size() * 2);
    std::string a, b;
    for (size_t i = 0; i < merges.size(); ++i) {
        const std::string field = "tokenizer.ggml.merges[" + std::to_string(i) + "]";
        if (!split_merge(merges[i], a, b)) throw input_error(m.source, field, "expected 'left right', got '" + merges[i] + "'");
        m.add_merge(field, int32_t(i), a, b);
    }

    auto special_id = [&](const char * key) -> int32_t {
        if (!f.find(key)) return -1;
        const uint64_t v = f.get_u64(key);
        if (v >= m.tokens.size()) {
            throw input_error(m.source, key, "token id " + std::to_string(v) + " is outside the vocabulary (" +
                                                 std::to_string(m.tokens.size()) + " tokens)");
        }
        return int32_t(v);
    };
    m.bos = special_id("tokenizer.ggml.bos_token_id");
    m.eos = special_id("tokenizer.ggml.eos_token_id");
    m.add_bos = f.get_bool_or("tokenizer.ggml.add_bos_token", m.spm) && m.bos >= 0;   // llama.cpp: SPM adds BOS by default
    return tok;
}

} // namespace attnlab
