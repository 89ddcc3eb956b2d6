// Float64 reference attention: one score row at a time in double precision,
// softmax with the row max subtracted, then the weighted sum of V. Independent
// of the flash kernel's tiling, so tests can compare the two.
#include "attention/attention.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace attnlab {

void attention_dense_reference_f64(const attention_layer_io & io, double * out64) {
    if (io.n_head <= 0 || io.n_head_kv <= 0 || io.head_dim <= 0 || io.n_head % io.n_head_kv != 0) {
        throw std::invalid_argument("attention_dense_reference_f64: bad head configuration");
    }
    const int L = io.n_tokens;
    const int hd = io.head_dim;
    const int64_t q_stride = (int64_t) io.n_head * hd;
    const int64_t kv_stride = (int64_t) io.n_head_kv * hd;
    std::vector<double> p(std::max(L, 1));

    for (int h = 0; h < io.n_head; ++h) {
        const int g = io.kv_head_of(h);
        for (int i = 0; i < L; ++i) {
            const float * qi = io.q + i * q_stride + (int64_t) h * hd;
            const int n_keys = io.causal ? i + 1 : L;
            const int j0 = io.window > 0 ? std::max(0, i - io.window + 1) : 0;
            double mx = -INFINITY;
            for (int j = j0; j < n_keys; ++j) {
                const float * kj = io.k + j * kv_stride + (int64_t) g * hd;
                double dot = 0.0;
                for (int d = 0; d < hd; ++d) dot += (double) qi[d] * (double) kj[d];
                p[j] = dot * (double) io.scale;
                if (io.softcap > 0.0f) p[j] = io.softcap * std::tanh(p[j] / io.softcap);
                mx = std::max(mx, p[j]);
            }
            double sum = 0.0;
            for (int j = j0; j < n_keys; ++j) {
                p[j] = std::exp(p[j] - mx);
                sum += p[j];
            }
            double * o = out64 + i * q_stride + (int64_t) h * hd;
            for (int d = 0; d < hd; ++d) o[d] = 0.0;
            for (int j = j0; j < n_keys; ++j) {
                const float * vj = io.v + j * kv_stride + (int64_t) g * hd;
                const double w = p[j] / sum;
                for (int d = 0; d < hd; ++d) o[d] += w * (double) vj[d];
            }
        }
    }
}

} // namespace attnlab
