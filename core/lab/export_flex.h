#pragma once
// Export of selections to the user's stack.
//
// FlexAttention block lists (torch.nn.attention.flex_attention.BlockMask.
// from_kv_blocks): per layer, head and query block, the kept key blocks split
// in two disjoint sets, as FlexAttention wants them:
//   full_kv_num_blocks / full_kv_indices   blocks whose every pair is kept:
//                                          computed without calling mask_mod
//   kv_num_blocks / kv_indices             the other kept blocks (diagonal
//                                          blocks of a causal head, blocks a
//                                          token-level mask only partly keeps):
//                                          computed with mask_mod
// Shapes [n_layers, n_head, nq] and [n_layers, n_head, nq, nk] (int32;
// indices ascending, padded with 0 past each row's count). A batch dimension
// is added by the reader (x[layer].unsqueeze(0)).
//
// Written as safetensors with metadata "attnlab.flex" (JSON: block size,
// method spec, model and text sha256, tokens, layers, heads, scale), plus a
// reference sidecar "<out>.ref.safetensors": one head's Q, K, V, the token
// mask (uint8 [L, L]) and AttnLab's block-sparse output, for tools/flex_check.py.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/selection.h"
#include "io/trace.h"

namespace attnlab {

class sparse_method;
class job_progress;

struct flex_block_lists {
    std::vector<int> layers;
    int n_head = 0, n_tokens = 0, block = 0, nq = 0, nk = 0;
    std::vector<int32_t> kv_num_blocks, full_kv_num_blocks;   // [layers, n_head, nq]
    std::vector<int32_t> kv_indices, full_kv_indices;         // [layers, n_head, nq, nk]
};

// True when every pair (i, j) of block (I, J) with i, j < L is selected
// (a causal head's diagonal block never is: its upper pairs are masked).
bool flex_block_full(const selection & s, int I, int J);

// Fills one head's rows: kv_num[nq], kv_idx[nq * nk], same for full_*.
void flex_head_lists(const selection & s, int32_t * kv_num, int32_t * kv_idx, int32_t * full_num, int32_t * full_idx);

// sels[layer_index][head]: every head one L, one block size.
flex_block_lists flex_from_selections(const std::vector<int> & layers, const std::vector<std::vector<selection>> & sels);

struct flex_export_options {
    std::string method_spec;
    std::string score_spec = "softmax";
    int check_layer = -1;      // head written to the reference sidecar; -1: the middle captured layer
    int check_head = 0;
    std::string minference_json;   // "": not written
    job_progress * progress = nullptr;
};

struct flex_export_result {
    flex_block_lists lists;
    std::string path, ref_path, minference_path;
    int check_layer = 0, check_head = 0;
    double token_density = 0.0, block_density = 0.0;   // means over layers and heads
    double full_block_share = 0.0;                      // full blocks / kept blocks
    double select_seconds = 0.0;
};

// Runs the method on every captured layer and head, writes the export, the
// reference sidecar and (optionally) the MInference-style per-head JSON.
flex_export_result flex_export(const qkv_capture & cap, const sparse_method & method, const std::string & out_path,
                               const flex_export_options & opt);

// The per-head pattern/budget JSON, in the spirit of MInference's configs: a
// list per layer of {head: [pattern, kv_blocks_per_query_block,
// keys_per_query_row, block_density]}.
nlohmann::json flex_minference_json(const flex_block_lists & lists, const std::vector<std::vector<selection>> & sels,
                                    const std::string & pattern, const nlohmann::json & meta);

// The Q/K/V a command works on, from a model (captured on `text_spec`, first
// ctx tokens; metrics need evaluation text, so calibration text is refused
// unless allow_calibration) or from a trace file. `layers` empty: all.
// device "cuda": a model's capture runs on the GPU (capture_options::gpu).
qkv_capture capture_from_source(const std::string & source, const std::string & text_spec, int ctx,
                                const std::vector<int> & layers, bool allow_calibration, job_progress * progress,
                                const std::string & device = "cpu");

} // namespace attnlab
