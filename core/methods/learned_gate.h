#pragma once
// learned_gate(τ or ρ) (METHODS.md, seed 000; reference: SeerAttention's
// AttnGate). Per head a small gate on mean-pooled blocks:
//   q̃ = Q̄·W_q, k̃ = K̄·W_k (d → d_g), P_I = softmax_J(q̃_I·k̃_Jᵀ/sqrt(d_g)), J causal.
// Trained per head by distillation with Adam: target T_IJ = the true
// attention mass of key block J for query block I (dense softmax of that head,
// averaged over the rows of I), loss mean_I KL(T_I ‖ P_I), on captures of
// calibration text only. Init W_q = W_k = R (Gaussian, E[RRᵀ] = sqrt(d_g)·s·I:
// a random projection of block_topk's pooled score); with two or more
// windows the last quarter (at least one) is held out and the weights of the
// best held-out loss (checked every 5 steps) are kept. Selection: per query block the blocks with P ≥ τ
// (tau > 0), else the top ceil(ρ·nb_causal) by P; always the diagonal and
// block 0, counted toward the budget (as block_topk does).
//
// Parameter file (safetensors, written atomically): tensors "wq", "wk"
// [n_layers, n_head, head_dim, d_g] F32, "initial_loss", "final_loss",
// "val_loss" [n_layers, n_head] F32; metadata "attnlab.kind" = "learned_gate",
// "format_version", "calib_text_spec", "calib_text_sha256", "model_sha256",
// "model_id", "block", "d_g", "head_dim", "n_head", "layers" ("0,3,7"),
// "steps", "lr", "seed", "ctx", "windows", "val_windows", "final_loss" (mean
// over heads).
// Spec: learned_gate:rho=0.2,tau=0,B=64,params=FILE (B must be the gate's).
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/trace.h"
#include "methods/block_select.h"
#include "methods/method.h"
#include "methods/registry_trained.h"

namespace attnlab {

class job_progress;

struct gate_train_options {
    int block = 64;
    int d_g = 32;
    int steps = 300;
    double lr = 1e-2;
    uint64_t seed = 0;
    std::vector<int> layers;        // empty: every captured layer
    bool keep_curves = false;       // keep each head's loss per step
    job_progress * progress = nullptr;
};

struct gate_params : trained_params {
    int block = 64;
    int d_g = 32;
    int val_windows = 0;            // calibration windows held out for early stopping
    std::vector<float> wq, wk;      // [layers][n_head][head_dim][d_g]
    std::vector<float> val_loss;                     // best held-out loss (0 without held-out windows), [layers][n_head]
    std::vector<std::vector<double>> curves;         // [layers*n_head][step], when kept

    double mean_val_loss() const { return trained_mean_loss(val_loss); }
    const float * wq_of(int li, int h) const { return wq.data() + ((size_t) li * n_head + h) * head_dim * d_g; }
    const float * wk_of(int li, int h) const { return wk.data() + ((size_t) li * n_head + h) * head_dim * d_g; }
};

// Trains one gate per (captured layer, query head). Every capture must be of
// calibration text (check_calibration_set); progress per head; cancel throws
// job_cancelled.
gate_params gate_train(const std::vector<const qkv_capture *> & calib, const gate_train_options & o);

// An untrained gate with independent random W_q, W_k ~ N(0, 1/d) (the
// baseline "random gate"); provenance left empty.
gate_params gate_random(int n_head, int head_dim, const std::vector<int> & layers, int block, int d_g, uint64_t seed);

void gate_save(const std::string & path, const gate_params & p);
// input_error(path, field, ...) for a missing or bad metadata field or tensor.
gate_params gate_load(const std::string & path);

// P of one head (nb x nb row-major, zero above the diagonal when causal).
std::vector<double> gate_probs(const gate_params & p, int li, int h, const head_inputs & in);

// A gate method on loaded parameters. Heads of layers the gate has no
// parameters for fall back to block_topk at the same rho (select() cannot
// throw inside the hook's parallel loop); fallbacks() counts them.
class learned_gate_method : public sparse_method {
public:
    learned_gate_method(std::shared_ptr<const gate_params> p, double rho, double tau, std::string spec);
    std::string name() const override { return "learned_gate"; }
    std::string spec() const override { return spec_; }
    double predictor_flops(int L, int d, bool causal) const override;
    selection select(const head_inputs & in) const override;
    // tau = 0: the GPU runs the gate itself (tau > 0 needs the softmax
    // threshold: host selection).
    gpu_selector gpu_selection() const override;
    const trained_provenance * provenance() const override { return &p_->prov; }
    const std::string & calib_text_sha256() const { return p_->prov.calib_text_sha256; }
    const gate_params & params() const { return *p_; }
    double rho() const { return rho_; }
    double tau() const { return tau_; }
    int64_t fallbacks() const;

private:
    std::shared_ptr<const gate_params> p_;
    double rho_, tau_;
    std::string spec_;
    std::unique_ptr<sparse_method> fallback_;
    mutable std::shared_ptr<std::atomic<int64_t>> n_fallback_;
};

} // namespace attnlab
