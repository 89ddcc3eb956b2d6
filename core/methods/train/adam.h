#pragma once
// Adam (Kingma & Ba 2015) over one flat parameter vector, in double. The
// trained methods keep every parameter of one head in one vector, so a head
// trains with one optimiser and heads train independently (in parallel).
#include <cmath>
#include <vector>

namespace attnlab {

struct adam_options {
    double lr = 1e-2;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
};

class adam {
public:
    adam(size_t n, adam_options o = adam_options()) : o_(o), m_(n, 0.0), v_(n, 0.0) {}

    // One step: p -= lr_scale·lr·m̂/(sqrt(v̂)+eps). lr_scale lets callers decay.
    void step(std::vector<double> & p, const std::vector<double> & g, double lr_scale = 1.0) {
        ++t_;
        const double c1 = 1.0 - std::pow(o_.beta1, (double) t_);
        const double c2 = 1.0 - std::pow(o_.beta2, (double) t_);
        const double lr = o_.lr * lr_scale;
        for (size_t i = 0; i < p.size(); ++i) {
            m_[i] = o_.beta1 * m_[i] + (1.0 - o_.beta1) * g[i];
            v_[i] = o_.beta2 * v_[i] + (1.0 - o_.beta2) * g[i] * g[i];
            p[i] -= lr * (m_[i] / c1) / (std::sqrt(v_[i] / c2) + o_.eps);
        }
    }
    long steps() const { return t_; }

private:
    adam_options o_;
    std::vector<double> m_, v_;
    long t_ = 0;
};

} // namespace attnlab
