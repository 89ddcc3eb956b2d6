// spa: exact attention on the block_topk pairs plus a FAVOR+ low-rank
// estimate of the skipped ones (see spa.h).
#include "methods/spa.h"
#include "base/error.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <omp.h>

#include "methods/train/calib.h"

namespace attnlab {

std::vector<double> spa_omega(uint64_t seed, int layer, int head, int m, int d) {
    std::vector<double> w((size_t) m * d);
    for (int l = 0; l < m; ++l)
        for (int i = 0; i < d; ++i) w[(size_t) l * d + i] = mix_normal(seed, layer, head, l, i);
    return w;
}

void spa_attend(const head_inputs & in, const float * v, int64_t v_stride, const selection & sel, int m, uint64_t seed,
                float * out, int64_t out_stride) {
    const int L = in.n_tokens, d = in.head_dim;
    if (L <= 0) return;
    const double s = in.scale, rs = std::sqrt(s), inv_sqrt_m = 1.0 / std::sqrt((double) m);
    const std::vector<double> W = spa_omega(seed, in.layer, in.head, m, d);

    // a_il = ω_l·q'_i − ‖q'_i‖²/2 and b_jl likewise for keys; keys share one
    // stabiliser b_max so φ(k) ≤ 1/sqrt(m) (the rows add theirs back below).
    std::vector<double> a((size_t) L * m), b((size_t) L * m);
    double b_max = -HUGE_VAL;
    for (int t = 0; t < L; ++t) {
        const float * q = in.q + t * in.q_stride;
        const float * k = in.k + t * in.k_stride;
        double qq = 0.0, kk = 0.0;
        for (int i = 0; i < d; ++i) {
            qq += (double) q[i] * q[i];
            kk += (double) k[i] * k[i];
        }
        for (int l = 0; l < m; ++l) {
            const double * w = &W[(size_t) l * d];
            double wq = 0.0, wk = 0.0;
            for (int i = 0; i < d; ++i) {
                wq += w[i] * q[i];
                wk += w[i] * k[i];
            }
            a[(size_t) t * m + l] = rs * wq - 0.5 * s * qq;
            b[(size_t) t * m + l] = rs * wk - 0.5 * s * kk;
            b_max = std::max(b_max, b[(size_t) t * m + l]);
        }
    }
    std::vector<double> phk((size_t) L * m);
    for (size_t x = 0; x < phk.size(); ++x) phk[x] = std::exp(b[x] - b_max) * inv_sqrt_m;

    // Per key block: Σ φ(k_j) v_jᵀ (m x d) and Σ φ(k_j) (m); exclusive prefix
    // over blocks, so each query block starts from its own prefix.
    const int B = sel.block, nb = (L + B - 1) / B, md = m * d;
    std::vector<double> bs((size_t) (nb + 1) * (md + m), 0.0);
    for (int J = 0; J < nb; ++J) {
        double * S = &bs[(size_t) (J + 1) * (md + m)];
        double * z = S + md;
        for (int j = J * B; j < std::min(L, J * B + B); ++j) {
            const float * vj = v + j * v_stride;
            for (int l = 0; l < m; ++l) {
                const double f = phk[(size_t) j * m + l];
                z[l] += f;
                for (int i = 0; i < d; ++i) S[l * d + i] += f * vj[i];
            }
        }
    }
    for (int J = 1; J <= nb; ++J)
        for (int x = 0; x < md + m; ++x) bs[(size_t) J * (md + m) + x] += bs[(size_t) (J - 1) * (md + m) + x];
    const double * total = &bs[(size_t) nb * (md + m)];

#pragma omp parallel for schedule(dynamic, 1) if (!omp_in_parallel())
    for (int I = 0; I < nb; ++I) {
        std::vector<double> pre(bs.begin() + (size_t) I * (md + m), bs.begin() + (size_t) (I + 1) * (md + m));
        std::vector<int32_t> keys;
        std::vector<double> e, phq(m), num(d), lr(d);
        for (int i = I * B; i < std::min(L, I * B + B); ++i) {
            if (in.causal) {
                // prefix through key i
                const float * vi = v + i * v_stride;
                for (int l = 0; l < m; ++l) {
                    const double f = phk[(size_t) i * m + l];
                    pre[md + l] += f;
                    for (int x = 0; x < d; ++x) pre[l * d + x] += f * vi[x];
                }
            }
            const double * S = in.causal ? pre.data() : total;
            const double * z = S + md;
            selection_row_keys(sel, i, keys);
            const float * q = in.q + i * in.q_stride;
            e.resize(keys.size());
            double c = -HUGE_VAL;
            for (size_t t = 0; t < keys.size(); ++t) {
                const float * k = in.k + keys[t] * in.k_stride;
                double dot = 0.0;
                for (int x = 0; x < d; ++x) dot += (double) q[x] * k[x];
                e[t] = s * dot;
                c = std::max(c, e[t]);
            }
            double den = 0.0;
            std::fill(num.begin(), num.end(), 0.0);
            for (size_t t = 0; t < keys.size(); ++t) {
                e[t] = std::exp(e[t] - c);
                den += e[t];
                const float * vj = v + keys[t] * v_stride;
                for (int x = 0; x < d; ++x) num[x] += e[t] * vj[x];
            }
            const int64_t n_causal = in.causal ? i + 1 : L;
            if ((int64_t) keys.size() < n_causal) {
                // φ(q_i) carries the row stabiliser c and the keys' b_max.
                for (int l = 0; l < m; ++l) phq[l] = std::exp(a[(size_t) i * m + l] + b_max - c) * inv_sqrt_m;
                double lden = 0.0;
                for (int l = 0; l < m; ++l) lden += phq[l] * z[l];
                for (int x = 0; x < d; ++x) {
                    double acc = 0.0;
                    for (int l = 0; l < m; ++l) acc += phq[l] * S[l * d + x];
                    lr[x] = acc;
                }
                for (size_t t = 0; t < keys.size(); ++t) {
                    const double * fk = &phk[(size_t) keys[t] * m];
                    double f = 0.0;
                    for (int l = 0; l < m; ++l) f += phq[l] * fk[l];
                    lden -= f;
                    const float * vj = v + keys[t] * v_stride;
                    for (int x = 0; x < d; ++x) lr[x] -= f * vj[x];
                }
                if (lden > 0.0) {
                    den += lden;
                    for (int x = 0; x < d; ++x) num[x] += lr[x];
                }
            }
            float * o = out + i * out_stride;
            for (int x = 0; x < d; ++x) o[x] = den > 0.0 ? (float) (num[x] / den) : 0.0f;
        }
    }
}

spa_method::spa_method(double rho, int m, uint64_t seed, int B, std::string spec)
    : inner_(block_topk_create(rho, B)), m_(m), seed_(seed), spec_(std::move(spec)) {}

double spa_method::predictor_flops(int L, int d, bool causal) const {
    return inner_->predictor_flops(L, d, causal) + 6.0 * L * (double) m_ * d;
}

void spa_method::attend(const attention_layer_io & io, const selection * sels, const score_fn & score) const {
    if (score.kind != score_kind::softmax) {
        throw input_error(spec_, "score", "spa approximates exp(s q.k): it runs with the softmax score only");
    }
    const int64_t q_stride = (int64_t) io.n_head * io.head_dim, v_stride = (int64_t) io.n_head_kv * io.head_dim;
#pragma omp parallel for schedule(dynamic, 1)
    for (int h = 0; h < io.n_head; ++h) {
        spa_attend(head_inputs_of(io, h), io.v + (int64_t) io.kv_head_of(h) * io.head_dim, v_stride, sels[h], m_, seed_,
                   io.out + (int64_t) h * io.head_dim, q_stride);
    }
}

namespace {

const method_registrar reg([] {
    method_info e;
    e.name = "spa";
    e.help = "exact attention on block_topk(rho) pairs + FAVOR+ low-rank estimate (m features) of the rest";
    e.params = {param_real("rho", "0.2", 0.0, 1.0, true, "kept fraction of each query block's causal blocks"),
                param_int("m", "64", 1, 65536, "random features"), param_int("seed", "0", 0, 2147483647.0, "random seed"),
                param_block()};
    e.create = [](const method_args & a) -> std::unique_ptr<sparse_method> {
        return std::make_unique<spa_method>(a.real("rho"), a.integer("m"), (uint64_t) a.integer("seed"), a.integer("B"),
                                            method_args_spec("spa", a));
    };
    e.uses_qk = true;
    e.order = 120;
    return e;
}());

} // namespace

} // namespace attnlab
