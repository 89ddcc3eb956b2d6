// Score functions: spec text and the hyperbolic geometry helpers.
#include "attention/score.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

namespace attnlab {

namespace {

// Shortest text that parses back to the same float.
std::string float_text(float x) {
    std::ostringstream os;
    os.precision(9);
    os << x;
    return os.str();
}

template <typename T> void expmap0(const T * x, int d, T c, T * out) {
    T n2 = 0;
    for (int i = 0; i < d; ++i) n2 += x[i] * x[i];
    const T sc = std::sqrt(c);
    const T n = std::sqrt(n2);
    if (n == 0) {
        for (int i = 0; i < d; ++i) out[i] = 0;
        return;
    }
    // tanh(√c n)/(√c n), then the projection to radius (1 − eps)/√c.
    T r = std::tanh(sc * n) / sc;
    const T r_max = (T) (1.0 - k_ball_eps) / sc;
    r = std::min(r, r_max);
    const T f = r / n;
    for (int i = 0; i < d; ++i) out[i] = x[i] * f;
}

} // namespace

const char * score_kind_name(score_kind k) {
    switch (k) {
        case score_kind::softmax: return "softmax";
        case score_kind::relu: return "relu";
        case score_kind::hyperbolic: return "hyperbolic";
    }
    return "?";
}

std::string score_fn::spec() const {
    switch (kind) {
        case score_kind::softmax: return "softmax";
        case score_kind::relu:
            return "relu:b=" + float_text(relu_bias) + ",norm=" + (relu_row_norm ? "row" : "L");
        case score_kind::hyperbolic:
            return "hyperbolic:c=" + float_text(c) + ",beta=" + float_text(beta) + ",gamma=" + float_text(gamma);
    }
    return "?";
}

void poincare_expmap0(const float * x, int d, float c, float * out) { expmap0<float>(x, d, c, out); }
void poincare_expmap0(const double * x, int d, double c, double * out) { expmap0<double>(x, d, c, out); }

void mobius_add(const double * x, const double * y, int d, double c, double * out) {
    double xy = 0, x2 = 0, y2 = 0;
    for (int i = 0; i < d; ++i) {
        xy += x[i] * y[i];
        x2 += x[i] * x[i];
        y2 += y[i] * y[i];
    }
    const double a = 1.0 + 2.0 * c * xy + c * y2;
    const double b = 1.0 - c * x2;
    const double den = 1.0 + 2.0 * c * xy + c * c * x2 * y2;
    for (int i = 0; i < d; ++i) out[i] = (a * x[i] + b * y[i]) / den;
}

double poincare_distance_mobius(const double * x, const double * y, int d, double c) {
    std::vector<double> mx(x, x + d), r(d);
    for (auto & v : mx) v = -v;
    mobius_add(mx.data(), y, d, c, r.data());
    double n2 = 0;
    for (int i = 0; i < d; ++i) n2 += r[i] * r[i];
    const double sc = std::sqrt(c);
    return 2.0 / sc * std::atanh(std::min(sc * std::sqrt(n2), 1.0 - 1e-16));
}

} // namespace attnlab
