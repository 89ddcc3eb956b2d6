#pragma once
// Capture: run a model on text and keep every selected layer's post-RoPE
// Q, K, V (the input of every later analysis), with the provenance a trace needs.
#include <string>
#include <vector>

#include "attention/attention.h"
#include "io/trace.h"
#include "data/corpus.h"

namespace attnlab {

struct llama_model;
class llama_gpu;
class bpe_tokenizer;
class job_progress;

struct capture_options {
    int ctx = 1024;                  // tokens captured, from the start of the text
    std::vector<int> layers;         // empty: all layers
    st_dtype dtype = st_dtype::F32;  // dtype a trace written from it will use
    job_progress * progress = nullptr;
    // Run the forward pass on this GPU (model/llama_gpu_api.h): the same
    // post-RoPE Q/K/V, from bf16 weights with fp32 accumulation, through its
    // observer. nullptr: llama_forward on the CPU.
    llama_gpu * gpu = nullptr;
};

// Tokenises the text, takes its first ctx tokens and runs the forward pass
// with a capturing hook. input_error when the text has fewer than 2 tokens,
// ctx is out of range for the model, or a layer index does not exist.
qkv_capture capture_run(const llama_model & m, const bpe_tokenizer & tok, const text_source & text,
                        const capture_options & opt);

// The same from token ids (no tokenizer needed; token_strings are left as the
// ids in decimal). text_spec/text_sha256 of the result are empty.
qkv_capture capture_run_ids(const llama_model & m, const std::vector<int32_t> & ids, const capture_options & opt);

// A read-only view of one captured layer (out is left null), the form every
// attention kernel and method takes. index is into cap.layers.
attention_layer_io capture_layer_io(const qkv_capture & cap, size_t index);

// Parses "0,1,5-7" into layer indices below n_layer; input_error names `what`.
std::vector<int> parse_layer_list(const std::string & spec, int n_layer, const std::string & what);

} // namespace attnlab
