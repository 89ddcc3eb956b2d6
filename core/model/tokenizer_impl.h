#pragma once
// Internal to the tokenizer (tokenizer.cpp: the BPE core and GGUF loading;
// tokenizer_json.cpp: tokenizer.json loading): the state both fill.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/tokenizer.h"

namespace attnlab {

// Which splitting regex the model was trained with.
enum class pre_kind {
    gpt2,   // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    smollm, // every \p{N} isolated (HF Digits(individual_digits)), then gpt2
    llama3, // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    qwen2,  // as llama3 with \p{N} (one digit per piece)
};

inline const char * const gpt2_pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
inline const char * const llama3_pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
inline const char * const qwen2_pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// The text being split, one entry per code point. Ends of pieces are handled
// by the splitters' `end` argument: lookaheads stop there, as the regex
// engine does when it runs on each piece separately.
struct cp_text {
    std::vector<uint32_t> cp;
    std::vector<uint32_t> off; // byte offset of each code point; off[n] = byte length
    std::vector<uint8_t> cls;
};

struct merge_info {
    int32_t rank;
    int32_t id;
};

inline uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

// Where a SentencePiece-style tokenizer puts its "▁" prefix: HF's Prepend
// normalizer runs on every segment between added tokens, Metaspace with
// prepend_scheme "first" only on the text's first.
enum class spm_prefix { none, every_segment, first_segment };

inline const char * const k_spm_space = "\xe2\x96\x81";   // U+2581 "▁"

// "<0x41>" -> 0x41; -1 for anything else.
inline int spm_byte_of(const std::string & t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
    const int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

enum token_kind : uint8_t { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER = 4, TOK_UNUSED = 5, TOK_BYTE = 6 };


struct bpe_tokenizer::impl {
    std::string source;                // file the vocabulary came from (for errors)
    std::string pre_name;              // as the file spells it
    pre_kind pre = pre_kind::gpt2;
    bool ignore_merges = false;        // a word already in the vocab is one token
    std::vector<std::string> tokens;   // as stored (byte-level alphabet)
    std::vector<std::string> pieces;   // bytes each token stands for
    std::vector<uint8_t> kinds;
    std::unordered_map<std::string, int32_t> token_to_id;
    std::unordered_map<uint64_t, merge_info> merges;
    int32_t byte_to_id[256];
    // Added tokens matched literally in the text, bucketed by first byte.
    std::vector<std::pair<std::string, int32_t>> specials_by_byte[256];
    int32_t bos = -1, eos = -1;
    bool add_bos = false;
    // SentencePiece-style BPE (Llama 2, Mistral, Gemma): spaces become "▁", a
    // segment may get a leading "▁", symbols start as characters, and a
    // character missing from the vocabulary falls back to its bytes' <0xXX>
    // tokens (else unk, consecutive unks fused).
    bool spm = false;
    spm_prefix prepend = spm_prefix::none;
    bool prefix_if_missing = false;   // Metaspace: no "▁" prefix on text that starts with one
    int strip_lead = 0;               // the decoder's Strip: leading spaces dropped
    int32_t unk = -1;
    bool fuse_unk = false;
    int32_t byte_token[256];   // id of "<0xXX>", -1 when absent

    void finish(); // derive pieces, byte ids, special buckets
    void merge_symbols(std::vector<int32_t> & ids, std::vector<int32_t> & out) const;
    void spm_segment(std::string_view seg, bool first, std::vector<int32_t> & out) const;
    // GGUF "llama" vocabularies carry scores instead of merges: llama.cpp's
    // SentencePiece merging (the adjacent pair whose concatenation is the
    // highest-scoring token first, leftmost on ties).
    std::vector<float> scores;
    void spm_by_score(const std::string & norm, std::vector<int32_t> & out) const;
    void add_merge(const std::string & field, int32_t rank, const std::string & a, const std::string & b);
    void bpe_word(std::string_view word, std::vector<int32_t> & out) const;
    template <typename F> void pre_tokenize(const cp_text & t, F && emit) const;
};

// Splits a GGUF / tokenizer.json merge string "a b".
bool split_merge(const std::string & s, std::string & a, std::string & b);
pre_kind pre_from_name(const std::string & file, const std::string & field, const std::string & name);

} // namespace attnlab
