#include "model/rope.h"

#include <algorithm>
#include <cmath>

namespace attnlab {

namespace {

// transformers' get_mscale: YaRN's attention scaling for a context factor.
double yarn_mscale(double factor) { return factor <= 1.0 ? 1.0 : 0.1 * std::log(factor) + 1.0; }

// YaRN (Peng et al. 2023) as transformers' _compute_yarn_parameters: a ramp
// between interpolated (inv / factor) and extrapolated (inv) frequencies over
// the dimensions whose rotations in the original context lie between
// beta_slow and beta_fast.
void yarn_apply(const rope_scaling & s, int dim, double base, int orig_ctx, std::vector<double> & inv) {
    auto corr_dim = [&](double rot) { return dim * std::log(orig_ctx / (rot * 2.0 * M_PI)) / (2.0 * std::log(base)); };
    double lo = corr_dim(s.beta_fast), hi = corr_dim(s.beta_slow);
    if (s.yarn_truncate) { lo = std::floor(lo); hi = std::ceil(hi); }
    lo = std::max(lo, 0.0);
    hi = std::min(hi, double(dim - 1));
    if (lo == hi) hi += 0.001;
    for (size_t i = 0; i < inv.size(); ++i) {
        const double ramp = std::clamp((double(i) - lo) / (hi - lo), 0.0, 1.0);
        const double extra = 1.0 - ramp;   // weight of the extrapolated frequency
        inv[i] = inv[i] / s.factor * (1.0 - extra) + inv[i] * extra;
    }
}

// Llama 3.1's scaling: long wavelengths divided by factor, short ones kept,
// a smooth blend between (transformers' _compute_llama3_parameters).
void llama3_apply(const rope_scaling & s, std::vector<double> & inv) {
    const double old_ctx = s.orig_ctx;
    const double low_wl = old_ctx / s.low_freq_factor, high_wl = old_ctx / s.high_freq_factor;
    for (double & f : inv) {
        const double wl = 2.0 * M_PI / f;
        if (wl < high_wl) continue;
        if (wl > low_wl) { f = f / s.factor; continue; }
        const double smooth = (old_ctx / wl - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
    }
}

} // namespace

const char * rope_scaling_name(rope_scaling_type t) {
    switch (t) {
        case rope_scaling_type::none: return "none";
        case rope_scaling_type::linear: return "linear";
        case rope_scaling_type::dynamic: return "dynamic";
        case rope_scaling_type::yarn: return "yarn";
        case rope_scaling_type::llama3: return "llama3";
        case rope_scaling_type::longrope: return "longrope";
    }
    return "?";
}

float llama_config::score_scale() const { return attn_scale > 0.0f ? attn_scale : 1.0f / std::sqrt((float) head_dim); }

bool rope_depends_on_length(const llama_config & c) {
    return c.rope.type == rope_scaling_type::dynamic || c.rope.type == rope_scaling_type::longrope;
}

std::vector<double> rope_inv_freq(const llama_config & c, int n_seq, bool local) {
    const int half = c.head_dim / 2, dim = c.head_dim;
    const bool own_base = local && c.has(LLM_FEAT_LOCAL_ROPE_BASE) && c.rope_theta_local > 0.0f;
    double base = own_base ? c.rope_theta_local : c.rope_theta;
    const rope_scaling & s = c.rope;
    const rope_scaling_type type = own_base ? rope_scaling_type::none : s.type;
    if (type == rope_scaling_type::dynamic && c.n_ctx_train > 0 && n_seq > c.n_ctx_train) {
        // NTK-aware base growth past the trained context (transformers' dynamic).
        const double r = s.factor * n_seq / c.n_ctx_train - (s.factor - 1.0);
        base *= std::pow(r, double(dim) / (dim - 2));
    }
    std::vector<double> inv(half);
    for (int i = 0; i < half; ++i) inv[i] = std::pow(base, -2.0 * i / dim);
    switch (type) {
        case rope_scaling_type::linear:
            for (double & f : inv) f /= s.factor;
            break;
        case rope_scaling_type::yarn: yarn_apply(s, dim, base, s.orig_ctx, inv); break;
        case rope_scaling_type::llama3:
            if (!s.freq_factors.empty()) {
                for (int i = 0; i < half; ++i) inv[i] /= s.freq_factors[i];
            } else {
                llama3_apply(s, inv);
            }
            break;
        case rope_scaling_type::longrope: {
            const std::vector<float> & ext = n_seq > s.orig_ctx ? s.long_factors : s.short_factors;
            for (int i = 0; i < half; ++i) inv[i] /= ext[i];
            break;
        }
        default: break;
    }
    return inv;
}

double rope_attn_factor(const llama_config & c, bool local) {
    if (local && c.has(LLM_FEAT_LOCAL_ROPE_BASE) && c.rope_theta_local > 0.0f) return 1.0;
    const rope_scaling & s = c.rope;
    if (s.attn_factor > 0.0) return s.attn_factor;
    if (s.type == rope_scaling_type::yarn) return yarn_mscale(s.factor);
    if (s.type == rope_scaling_type::longrope) {
        // The loaders set factor to max_position / original_max_position
        // unless the file gives one (transformers' rule).
        const double f = s.factor;
        return f <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(f) / std::log(double(s.orig_ctx)));
    }
    return 1.0;
}

rope_table::rope_table(const llama_config & c, int n_pos, bool local) : half(c.head_dim / 2) {
    cos_.resize(size_t(n_pos) * half);
    sin_.resize(size_t(n_pos) * half);
    const std::vector<double> inv_freq = rope_inv_freq(c, n_pos, local);
    const double mscale = rope_attn_factor(c, local);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n_pos; ++t)
        for (int i = 0; i < half; ++i) {
            const double a = t * inv_freq[i];
            cos_[size_t(t) * half + i] = float(std::cos(a) * mscale);
            sin_[size_t(t) * half + i] = float(std::sin(a) * mscale);
        }
}

} // namespace attnlab
