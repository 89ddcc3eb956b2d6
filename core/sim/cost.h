#pragma once
// The cost simulator: FLOPs, bytes, arithmetic intensity, roofline bound and
// time of one decoder layer and of the whole model, for prefill (L tokens from
// scratch) or decode (one token at position L with L cached), dense or sparse
// at a block density. Everything here is a projection, labelled "simulated".
//
// Conventions (stated once, used everywhere):
//  - FLOPs are matmul FLOPs (2 per multiply-add); softmax, norms, RoPE and
//    activations are counted as memory traffic only.
//  - Attention pays for the causal pairs inside the blocks it keeps (what a
//    block kernel computes); dense flash-style keeps every causal block, so its
//    pairs are exactly L(L+1)/2. A naive (eager) implementation computes and
//    materialises the full L x L score matrix per head, whatever the mask.
//  - Block-density methods keep, per query block I, ceil(rho*(I+1)) key
//    blocks, at least the diagonal and block 0 (METHODS.md block_topk).
//  - Prefill attention moves Q, O and, per query head, K and V once (query
//    tiles of a head share K/V through L2); decode reads the kept keys' K/V
//    once per KV head.
//  - Time of a component = max(FLOPs / (peak * eff), bytes / (bandwidth * eff)):
//    a roofline per component (linear layers, attention, predictor), summed.
//  - Several GPUs (n_gpu) split FLOPs, bytes and memory evenly: ideal tensor
//    parallelism, communication not modelled.
#include <cstdint>
#include <string>
#include <vector>

#include "sim/presets.h"

namespace attnlab {

struct sim_calibration; // sim/calibration.h

enum class sim_phase { prefill, decode };
enum class sim_method_kind { dense, window, block_density };
enum class attn_impl { flash, naive };

const char * sim_phase_name(sim_phase p);
const char * attn_impl_name(attn_impl a);

struct sim_method {
    std::string name = "dense";
    std::string family = "dense";      // dense | window | block_sparse | learned (the seed's regime classes)
    sim_method_kind kind = sim_method_kind::dense;
    double density = 1.0;              // block_density: target block density rho
    int window = 0;                    // window: tokens (keys i-w+1..i), paid at block granularity
    int block = 64;                    // B
    double overhead_share = 0.0;       // predictor FLOPs as a share of the layer's dense attention FLOPs
    double kernel_eff = 1.0;           // sparse kernel efficiency relative to the dense kernel (uncalibrated)
    double fixed_us = 0.0;             // fixed latency per layer (predictor launch, index build)
};

// A method spec through the one grammar (method_spec_parse) and the
// registry's resolver: any method whose entry has a cost model ("dense",
// "window:w=4096", "block_topk:rho=0.2", "learned_gate:rho=0.2"; defaults
// filled in), or the pseudo-method "density:rho=0.2" (rho required); sim-only
// keys on top: overhead, eff, fixed_us. Errors: input_error("--method",
// "method" or "method.KEY", ...); a method the simulator does not price is
// refused as "the simulator does not model NAME".
sim_method sim_method_parse(const std::string & spec);
std::string sim_method_spec(const sim_method & m);

struct sim_options {
    sim_phase phase = sim_phase::prefill;
    int64_t ctx = 8192;                // L
    int batch = 1;
    int n_gpu = 1;
    attn_impl impl = attn_impl::flash;
    int bytes_weight = 0;              // 0: the hardware's precision (2 for bf16, 4 for f32)
    int bytes_act = 0;
    int bytes_kv = 0;
    int bytes_score = 0;
    double eff_compute = 1.0;          // attained share of the dense peak (1 = pure roofline)
    double eff_memory = 1.0;
    double price_per_hour = 0.0;       // $ per GPU-hour; 0: no cost
    bool logits_all = false;           // prefill: logits for every position (perplexity) or only the last (serving)
    const sim_calibration * calib = nullptr; // measured attention efficiency by density, replaces peak * eff
};

struct sim_component {
    std::string name;                  // linear | attention | predictor | lm_head
    double flops = 0.0;
    double bytes = 0.0;
    double intensity = 0.0;            // FLOP per byte
    double time_s = 0.0;
    double compute_s = 0.0, memory_s = 0.0;
    bool memory_bound = false;
    double peak_used_tflops = 0.0;     // the compute rate the time used (datasheet*eff or calibrated)
};

struct sim_attention_plan {
    int64_t causal_blocks = 0;
    int64_t kept_blocks = 0;
    double block_density = 0.0;
    double pairs = 0.0;                // causal pairs inside kept blocks (per head, per sequence)
    double keys_read = 0.0;            // K/V rows a flash kernel streams per head, tile by tile (no L2 reuse)
};

struct sim_result {
    std::string label = "simulated";
    std::string model, hw, method_spec;
    sim_options opt;
    sim_attention_plan plan;
    std::vector<sim_component> layer;  // one decoder layer (all layers are alike)
    sim_component head;                // lm_head
    double layer_flops = 0.0, layer_bytes = 0.0, layer_time_s = 0.0, layer_intensity = 0.0;
    bool layer_memory_bound = false;   // the component taking the most time is memory-bound
    double flops = 0.0, bytes = 0.0, time_s = 0.0;  // whole model, per GPU
    double tokens = 0.0;               // tokens this phase produces (prefill: batch*L, decode: batch)
    double tokens_per_s = 0.0;
    double cost_per_mtok = 0.0;        // $ per million tokens (0 without a price)
    // memory, bytes per GPU
    double mem_weights = 0.0, mem_kv_cache = 0.0, mem_activations = 0.0, mem_scores = 0.0, mem_total = 0.0;
    double score_bytes_naive_head = 0.0;   // L^2 * bytes: one head's materialised matrix
    double score_bytes_naive_layer = 0.0;  // all heads of one layer, batch
    double score_bytes_flash_layer = 0.0;  // flash keeps tiles on chip; HBM holds the row stats (fp32)
    bool fits = true;
    bool calibrated = false;
    std::vector<std::string> notes;
};

// Roofline time of one component; sets memory_bound when the memory time is
// strictly the larger (at the ridge point it counts as compute-bound).
double roofline_time(double flops, double bytes, double peak_flops_per_s, double bytes_per_s, bool * memory_bound);

// Which blocks and pairs a method pays for at L (prefill: all rows; decode: row L of L+1 keys).
sim_attention_plan sim_attention_plan_make(const sim_method & m, int64_t L, sim_phase phase);

sim_result sim_run(const model_preset & model, const hw_preset & hw, const sim_method & method, const sim_options & opt);

// KV cache of one sequence at L tokens: 2 * n_layer * n_head_kv * head_dim * L * bytes.
double sim_kv_cache_bytes(const model_preset & m, int64_t L, int bytes);

} // namespace attnlab
