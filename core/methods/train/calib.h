#pragma once
// Calibration data for the trained methods (learned_gate, asa_router,
// layer_adaptive): captures of calibration text only, one head at a time.
//
// The KJV split (lab/corpus.h) is enforced twice: when capturing
// (calib_capture_windows calls text_require_part) and when training from any
// capture, whose trace text_spec must name the calibration part
// ("kjv:calib", "PATH:calib"); captures from "kjv:eval", whole texts or
// unknown sources are refused with input_error.
#include <cstdint>
#include <string>
#include <vector>

#include "io/trace.h"
#include "data/corpus.h"
#include "methods/block_select.h"
#include "methods/method.h"
#include "methods/registry_trained.h"

namespace attnlab {

class llama_gpu;

struct llama_model;
class bpe_tokenizer;
class job_progress;

// The text part a text spec names, by the rules of text_load ("kjv:calib",
// "/x/kjv.txt:eval", ...); whole for anything else (a plain file, "").
text_part text_spec_part(const std::string & spec);

// input_error(text_spec, "text part", ...) unless the capture is of calibration
// text; `what` names the job in the message.
void require_calibration_capture(const qkv_capture & cap, const std::string & what);

// All captures: calibration text, the same model, text, head layout and
// layers. Returns the shared trace_info of the first.
const trace_info & check_calibration_set(const std::vector<const qkv_capture *> & caps, const std::string & what);

// n_windows consecutive ctx-token windows from the start of the calibration
// text (different text in each, none in the evaluation part), each captured
// with capture_run_ids and stamped with the text's spec and sha256; on `gpu`
// when given (capture_options::gpu).
std::vector<qkv_capture> calib_capture_windows(const llama_model & m, const bpe_tokenizer & tok, const text_source & text,
                                               int ctx, int n_windows, const std::vector<int> & layers,
                                               job_progress * progress = nullptr, llama_gpu * gpu = nullptr);

// One captured head: Q/K (GQA resolved) and the V rows it reads.
struct capture_head {
    head_inputs in;
    const float * v = nullptr;
    int64_t v_stride = 0;
};
capture_head capture_head_of(const qkv_capture & cap, size_t layer_index, int h);

// The true attention mass of key block J for query block I, averaged over the
// query rows of I: T[I*nb + J] = (1/|I|) Σ_{i∈I} Σ_{j∈J, j causal} A_ij, with A
// the dense softmax of the head (double). Each causal row of T sums to 1.
std::vector<double> block_mass_target(const head_inputs & in, int B);

// Dense softmax rows in double: A[i*L + j] (0 above the diagonal when causal).
// O(L²) memory: for calibration-size L.
std::vector<double> dense_softmax_rows(const head_inputs & in);

// The provenance of parameters fitted on captures with this trace_info.
trained_provenance calib_provenance(const trace_info & info, const std::string & kind);

// The layers to fit: `wanted` (every captured layer when empty), sorted and
// de-duplicated; slots[i] is layer i's index among the captured layers
// (input_error naming the text for a layer that was not captured).
std::vector<int> calib_layers(const trace_info & info, const std::vector<int> & wanted, std::vector<size_t> & slots);

// Learning-rate factor at step t of `steps`: constant, then a cosine decay to
// a tenth over the last half (the distilled methods' schedule).
double calib_lr_scale(int t, int steps);

// Standard normal from the method's hash (Box-Muller on two mix_uniform draws).
double mix_normal(uint64_t seed, uint64_t layer, uint64_t head, uint64_t row, uint64_t t);

} // namespace attnlab
