#pragma once
// Passkey retrieval: a random number hidden at a chosen depth of real
// evaluation text, then asked for at the end. Scored by the model's greedy
// answer, computed exactly with one forward pass: greedy decoding produces the
// key if and only if, with the key's tokens appended, the argmax at every
// answer position is the key's next token (teacher forcing gives the same
// prefixes greedy decoding would see up to the first mistake).
#include <cstdint>
#include <string>
#include <vector>

#include "attention/score.h"

namespace attnlab {

struct llama_model;
class bpe_tokenizer;
class attention_hook;
class job_progress;
class llama_gpu;
class sparse_method;

struct passkey_trial {
    int ctx = 0;
    double depth = 0.0;            // where the needle starts, as a fraction of the filler
    uint64_t seed = 0;
    std::string key;               // the digits
    int needle_position = 0;       // token index of the needle sentence
    int digits_correct = 0;        // leading digits the greedy answer gets right
    int n_digits = 0;
    bool retrieved = false;        // all digits right
};

struct passkey_options {
    int ctx = 2048;
    double depth = 0.5;            // 0..1
    uint64_t seed = 1;
    int n_digits = 5;
    // On a GPU (model/llama_gpu_api.h): the forward pass there, with `method`
    // (nullptr: dense); the hook is then an observer only (capture, cancel).
    llama_gpu * gpu = nullptr;
    const sparse_method * method = nullptr;
    score_fn score;   // the GPU pass's score function (on the CPU the hook carries it)
};

// The prompt of one trial: `prompt` ends with the question; `answer` holds
// the key's tokens as the model should continue.
struct passkey_prompt {
    std::string key;
    std::vector<int32_t> prompt;
    std::vector<int32_t> answer;
    int needle_position = 0;
};

passkey_prompt passkey_build(const bpe_tokenizer & tok, const std::string & filler, const passkey_options & opt);

// filler must be evaluation text (the caller checks the split). input_error if
// ctx is out of the model's range or the filler is too short for ctx.
passkey_trial passkey_run(const llama_model & m, const bpe_tokenizer & tok, const std::string & filler,
                          const passkey_options & opt, attention_hook * hook = nullptr,
                          job_progress * progress = nullptr);

} // namespace attnlab
