#include "model/rope.h"

#include <cmath>

namespace attnlab {

std::vector<double> rope_inv_freq(const llama_config & c) {
    const int half = c.head_dim / 2;
    std::vector<double> inv(half);
    for (int i = 0; i < half; ++i) inv[i] = std::pow(double(c.rope_theta), -2.0 * i / c.head_dim);
    return inv;
}

rope_table::rope_table(const llama_config & c, int n_pos) : half(c.head_dim / 2) {
    cos_.resize(size_t(n_pos) * half);
    sin_.resize(size_t(n_pos) * half);
    const std::vector<double> inv_freq = rope_inv_freq(c);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < n_pos; ++t)
        for (int i = 0; i < half; ++i) {
            const double a = t * inv_freq[i];
            cos_[size_t(t) * half + i] = float(std::cos(a));
            sin_[size_t(t) * half + i] = float(std::sin(a));
        }
}

} // namespace attnlab
