#pragma once
// Per-head metrics of a selection (METHODS.md, "Metrics"), against dense
// softmax attention of the same head. Everything runs in double, 64 query
// rows at a time (never more than a 64 x L slice of the score matrix), with
// OpenMP over the row chunks; fine for L = 8192.
//
//   token_density, block_density   selection bookkeeping
//   flop_fraction      (4·d·pairs in kept blocks + predictor FLOPs) / (4·d·causal pairs):
//                      what the block kernel pays, relative to dense
//   mass_recall        mean over rows of Σ_selected A_ij (A = dense softmax)
//   output_rel_error   ‖O_sparse − O‖_F / ‖O‖_F, O_sparse with the score function
//   kl_dense_sparse    mean over rows of KL(A_i ‖ Â_i). Â_i (the sparse row,
//                      normalised to sum 1) is zero off the selection, where A_i
//                      is not, so the exact value is +inf for any real
//                      sparsification; Â_i is mixed with ε = 1e-6 of the
//                      uniform row first (≈ (1 − recall)·log(n/ε) for softmax)
//   kl_sparse_dense    mean over rows of KL(Â_i ‖ A_i), exact (finite; equals
//                      −log(recall) per row for softmax)
//   oracle_precision / oracle_recall
//                      mask vs oracle_topk at the selection's token density ρ
//                      (per row the top oracle_row_budget(ρ, n_i) logits):
//                      |M∩O|/|M| and |M∩O|/|O|, pooled over rows
#include <cstdint>

#include "attention/score.h"
#include "attention/selection.h"
#include "methods/method.h"

namespace attnlab {

struct head_metrics {
    double token_density = 0.0;
    double block_density = 0.0;
    double predictor_flops = 0.0;
    double predictor_seconds = 0.0;   // measured by the caller, copied
    double flop_fraction = 0.0;
    double mass_recall = 0.0;
    double output_rel_error = 0.0;
    double kl_dense_sparse = 0.0;
    double kl_sparse_dense = 0.0;
    double oracle_precision = 0.0;
    double oracle_recall = 0.0;
};

constexpr double k_kl_mix_eps = 1e-6;

// `in` gives Q and K of the head (GQA resolved); v + t*v_stride is row t of V.
head_metrics head_metrics_compute(const head_inputs & in, const float * v, int64_t v_stride, const selection & sel,
                                  const score_fn & score = score_fn(), double predictor_flops = 0.0,
                                  double predictor_seconds = 0.0);

// Runs the method on head h of a layer (timing select()) and computes the
// metrics above.
head_metrics head_metrics_of_method(const attention_layer_io & io, int h, const sparse_method & m,
                                    const score_fn & score = score_fn());

// Mean over query rows of the entropy (nats) of the head's dense softmax row,
// -sum_j A_ij log A_ij over the row's keys (j <= i when causal): how spread
// a head's attention is, with no method involved (the app's Layers x heads
// grid opens on it). Scores in float (Eigen GEMM, 64 rows at a time, as the
// app's attention map computes them), the per-row entropies summed in double.
double head_entropy(const head_inputs & in);

} // namespace attnlab
