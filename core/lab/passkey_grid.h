#pragma once
// The passkey grid: every (ctx, depth, trial) of one method, the loop both
// `attnlab-cli passkey` and the `passkey` scenario kind run. Trial k of a
// (ctx, depth) uses seed + k; the trials come back ctx-major, then depth,
// then trial. The caller opens the model and refuses calibration text.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/passkey.h"

namespace attnlab {

class llama_gpu;
class sparse_method;

struct passkey_grid_options {
    std::vector<int> ctxs;
    std::vector<double> depths;
    int trials = 1;
    uint64_t seed = 1;
    std::string label;                        // progress stage prefix (the method's name), may be ""
    double progress_lo = 0.0, progress_hi = 1.0;   // share of the caller's progress this grid covers
    // On a GPU (passkey_options::gpu): every trial's forward pass there, with
    // `method` (nullptr: dense); the hook is not used then.
    llama_gpu * gpu = nullptr;
    const sparse_method * method = nullptr;
};

// hook: the method patched into every layer (nullptr: dense).
std::vector<passkey_trial> passkey_grid_run(const llama_model & m, const bpe_tokenizer & tok, const std::string & filler,
                                            const passkey_grid_options & opt, attention_hook * hook, job_progress * progress);

// {"ctx", "depth", "seed", "key", "needle_position", "digits_correct", "n_digits", "retrieved"}
nlohmann::json passkey_trial_json(const passkey_trial & t);

// Share of trials retrieved at each depth (over every ctx in `trials`).
std::vector<double> passkey_accuracy_by_depth(const std::vector<passkey_trial> & trials, const std::vector<double> & depths);

} // namespace attnlab
