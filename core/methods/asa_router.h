#pragma once
// asa_router(θ) (METHODS.md, seed 001; reference: DeepSeek-V3.2's lightning
// indexer, NSA selection). A token-level router per head:
//   r_ij = (q_i U_q)·(k_j U_k) + prior[bucket(i − j)] + sink·[j = 0]
// U_q, U_k: d x r (rank r, default 16); buckets log-spaced in the distance
// δ = i − j: δ for δ < 4, then 4 + floor(2·log2(δ/4)) (two per octave),
// capped at the last of 34.
// Phase 1 (statistics): prior[b] = the mean true logit s·q·k over the
// calibration pairs in bucket b (j > 0); sink = mean logit at j = 0 minus the
// prior of its bucket. U_q = U_k = a Gaussian map with E[U Uᵀ] = s·I, so the
// low-rank term starts as a random projection of the logit.
// Phase 2 (distillation, Adam): all parameters fitted to the true logits by
// mean_i KL(A_i ‖ softmax_j(r_i·)) over a fixed sample of rows per window.
// Mask: p̂_ij = softmax_j(r_ij) over the causal keys; keep p̂_ij ≥ θ (theta > 0),
// else per row the top ceil(ρ·n_i) keys by r_ij; always the diagonal. The
// selection is token-level: it reports token density and its block cover's
// block density (scattered tokens make poor blocks).
// Parameter file like learned_gate's: tensors "uq", "uk" [n_layers, n_head,
// head_dim, rank], "prior" [n_layers, n_head, 34], "sink" [n_layers, n_head],
// "initial_loss", "final_loss"; metadata as the gate's with "attnlab.kind" =
// "asa_router", "rank", "n_buckets", "rows" instead of "block", "d_g".
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/trace.h"
#include "methods/method.h"
#include "methods/registry_trained.h"

namespace attnlab {

class job_progress;

constexpr int k_router_buckets = 34;
int router_bucket(int64_t delta);

struct router_train_options {
    int rank = 16;
    int steps = 200;
    int rows = 128;                 // sampled query rows per window (all when L is smaller)
    double lr = 1e-2;
    uint64_t seed = 0;
    std::vector<int> layers;        // empty: every captured layer
    job_progress * progress = nullptr;
};

struct router_params : trained_params {
    int rank = 16;
    int rows = 0;                   // sampled query rows per window
    std::vector<float> uq, uk;      // [layers][n_head][head_dim][rank]
    std::vector<float> prior;       // [layers][n_head][k_router_buckets]
    std::vector<float> sink;        // [layers][n_head]
};

router_params router_train(const std::vector<const qkv_capture *> & calib, const router_train_options & o);
void router_save(const std::string & path, const router_params & p);
router_params router_load(const std::string & path);

// Router logits of one head: r[i*L + j] for causal j (others -inf).
std::vector<double> router_logits(const router_params & p, int li, int h, const head_inputs & in);

class asa_router_method : public sparse_method {
public:
    asa_router_method(std::shared_ptr<const router_params> p, double theta, double rho, int B, std::string spec);
    std::string name() const override { return "asa_router"; }
    std::string spec() const override { return spec_; }
    double predictor_flops(int L, int d, bool causal) const override;
    // Heads the router has no parameters for fall back to oracle_topk(ρ)'s
    // rule on the exact logits (select() cannot throw in the hook).
    selection select(const head_inputs & in) const override;
    const trained_provenance * provenance() const override { return &p_->prov; }
    const router_params & params() const { return *p_; }

private:
    std::shared_ptr<const router_params> p_;
    double theta_, rho_;
    int B_;
    std::string spec_;
};

// The mask rule on given logits (L x L, causal part used): shared with tests.
selection router_mask(const std::vector<double> & logits, int L, int B, bool causal, double theta, double rho);

} // namespace attnlab
