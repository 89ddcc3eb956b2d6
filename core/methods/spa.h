#pragma once
// spa(ρ, m) (METHODS.md, seed 002; reference: Scatterbrain, sparse +
// low-rank). Exact scores on the pairs block_topk(ρ) keeps; every skipped
// causal pair approximated by m positive random features (FAVOR+,
// Choromanski et al. 2021):
//   φ(x) = exp(ω·x' − ‖x'‖²/2) / sqrt(m), x' = sqrt(s)·x, ω_l ~ N(0, I_d),
//   E[φ(q)ᵀφ(k)] = exp(s·q·k).
// Row i, kept keys S_i, causal keys C_i = {j ≤ i}:
//   num_i = Σ_{j∈S_i} e^{s q_i·k_j} v_j + [φ(q_i)ᵀ Σ_{j∈C_i} φ(k_j)v_jᵀ − Σ_{j∈S_i} φ(q_i)ᵀφ(k_j) v_j]
//   den_i = Σ_{j∈S_i} e^{s q_i·k_j}     + [φ(q_i)ᵀ Σ_{j∈C_i} φ(k_j)     − Σ_{j∈S_i} φ(q_i)ᵀφ(k_j)]
//   o_i = num_i / den_i
// The bracket (the low-rank term minus its value on the kept pairs) is the
// skipped part; the sums over C_i are prefix sums, so causality costs
// nothing extra. A row with nothing skipped takes no low-rank term at all
// (ρ = 1 is exact dense); a bracketed denominator ≤ 0 (cancellation when
// almost everything is kept) drops the bracket for that row.
// ω is drawn from mix_hash(seed, layer, head, l, i) (i.i.d., not orthogonal).
// This is its own compute, not the block-sparse kernel: spa_method::attend
// runs spa_attend for every head, so sparse_attention_hook patches spa into
// the forward pass like any other method.
#include <cstdint>
#include <memory>
#include <vector>

#include "attention/attention.h"
#include "methods/method.h"

namespace attnlab {

// ω, m x d row-major.
std::vector<double> spa_omega(uint64_t seed, int layer, int head, int m, int d);

// Output of one head: row t at out + t*out_stride (head_dim floats). Runs in
// double; OpenMP over query blocks unless called inside a parallel region.
void spa_attend(const head_inputs & in, const float * v, int64_t v_stride, const selection & sel, int m, uint64_t seed,
                float * out, int64_t out_stride);

class spa_method : public sparse_method {
public:
    spa_method(double rho, int m, uint64_t seed, int B, std::string spec);
    std::string name() const override { return "spa"; }
    std::string spec() const override { return spec_; }
    // block_topk's scoring plus the features and prefix sums (6·L·m·d).
    double predictor_flops(int L, int d, bool causal) const override;
    // The exact part: block_topk(ρ). The compute step must be spa_attend.
    selection select(const head_inputs & in) const override { return inner_->select(in); }
    // spa_attend on every head (softmax only: the low-rank term estimates exp).
    void attend(const attention_layer_io & io, const selection * sels, const score_fn & score) const override;
    bool attends_selection_only() const override { return false; }   // + the low-rank term
    int features() const { return m_; }
    uint64_t seed() const { return seed_; }

private:
    std::unique_ptr<sparse_method> inner_;
    int m_;
    uint64_t seed_;
    std::string spec_;
};

} // namespace attnlab
