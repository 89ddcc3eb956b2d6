#pragma once
// Byte-level BPE (GPT-2 family) with the model's pre-tokenizer rules, read from
// GGUF metadata (tokenizer.ggml.*) or from a Hugging Face tokenizer.json; and
// SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Gemma) from a
// tokenizer.json (pre_type() "spm").
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace attnlab {

class gguf_file;

class bpe_tokenizer {
public:
    static bpe_tokenizer from_gguf(const gguf_file & f);                 // throws input_error
    static bpe_tokenizer from_tokenizer_json(const std::string & path);  // throws input_error

    bpe_tokenizer(bpe_tokenizer &&) noexcept;
    bpe_tokenizer & operator=(bpe_tokenizer &&) noexcept;
    ~bpe_tokenizer();

    // Encodes text. Special/control tokens written literally in the text
    // (e.g. "<|im_start|>") become their ids, as in the reference tokenizers.
    // add_bos follows the model's own flag unless forced.
    std::vector<int32_t> encode(std::string_view text) const;
    std::string decode(const std::vector<int32_t> & ids) const;
    // The bytes one token stands for (after undoing the byte-level mapping).
    std::string token_piece(int32_t id) const;

    int32_t n_vocab() const;
    int32_t bos_id() const;
    int32_t eos_id() const;
    bool add_bos() const;
    const std::string & pre_type() const; // e.g. "smollm", "gpt2", "llama-bpe"

private:
    bpe_tokenizer();
    struct impl;
    std::unique_ptr<impl> p_;
};

} // namespace attnlab
