#pragma once
// The seed claims of METHODS.md measured on the model at hand: what can be
// measured on this machine is measured (on evaluation text), what cannot is
// said so, with a pointer to where it is measured (bench/results/) when that
// exists. The exact-arithmetic rows come from sim/claims.h.
//
// Measurements (defaults sized for a few minutes on 2 cores):
//   recall curve   block_topk mass recall per layer and head at a grid of
//                  densities, on a capture of the first ctx tokens; oracle_topk
//                  at 15/20/25% as the upper bound
//   profile        per layer, the smallest grid density at which block_topk's
//                  mean recall over the layer's heads reaches 0.95
//   end to end     perplexity change and top-1 agreement with block_topk at
//                  15/20/25% patched into every layer (windows x ctx tokens),
//                  with predictor and kernel times against the dense kernel
//   trained        learned_gate, asa_router, spa, layer_adaptive, hybrid when
//                  the registry has them and they build from the spec given
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/claims.h"

namespace attnlab {

struct llama_model;
class bpe_tokenizer;
class job_progress;

struct claims_measure_options {
    std::string text = "kjv:eval";
    int ctx = 1024;
    int windows = 2;                 // perplexity windows of ctx tokens
    int block = 64;
    std::vector<double> rho_grid = {0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8, 1.0};
    std::vector<double> ppl_rhos = {0.15, 0.2, 0.25};
    // Specs for the trained/composed methods, by name (e.g. "learned_gate" ->
    // "learned_gate:params=gate.bin,rho=0.2"); absent: the name alone is tried.
    std::vector<std::string> trained_specs;
    std::string bench_dir;           // "" = <source>/bench/results
    std::string preset_dir;          // for the exact rows ("" = default)
    job_progress * progress = nullptr;
};

struct measured_claim {
    std::string seed;        // "000"
    std::string claim;       // the claim as METHODS.md states it
    std::string measured;    // what was measured here, in words with numbers ("" when not measured)
    std::string status;      // "measured", "not measured here", "measured elsewhere"
    std::string how;         // method, text, sizes; or why not / where
};

struct claims_report {
    std::vector<measured_claim> rows;
    std::vector<claim_row> exact;    // sim/claims.h
    nlohmann::json data;             // the numbers behind the rows (recall curve, profile, ppl rows)
};

// The driver of `attnlab-cli claims` and of the claims scenario kind. text
// must be evaluation text (sweep_require_evaluation).
claims_report claims_measure(const llama_model & m, const bpe_tokenizer & tok, const claims_measure_options & opt);

// {"rows": [measured_claim_json], "exact": claims_exact_json, "data"}
nlohmann::json claims_report_json(const claims_report & r);
// {"seed", "claim", "measured", "status", "how"}
nlohmann::json measured_claim_json(const measured_claim & c);
// {"seed", "claim", "quantity", "unit", "kind", "claimed", "exact", "ratio", "verdict"}:
// the exact rows as `attnlab-cli claims` and the claims scenario report them
// (`attnlab-cli sim --claims` adds "relation" and "note").
nlohmann::json claim_row_json(const claim_row & e);
nlohmann::json claims_exact_json(const std::vector<claim_row> & rows);

} // namespace attnlab
