#pragma once
// Score functions (METHODS.md): how a selected pair's weight is formed. They
// combine with any selection; pairs outside the selection get weight 0.
//
//   softmax             A_ij = softmax_j(s·q_i·k_j) over the selected keys
//   relu                A_ij = relu(s·q_i·k_j − b) / L, or / Σ_j relu(..) when
//                       row_norm (a row with no positive score gives zeros)
//   hyperbolic(c,β,γ)   x ↦ exp map at 0 of the Poincaré ball of curvature −c,
//                       A_ij = softmax_j(−β·d_c(q̂_i, k̂_j) − γ); no 1/sqrt(d)
//
// L in the relu rule is the sequence length (n_tokens), as in Wortsman et al.
// 2023, not the row's number of keys.
#include <cmath>
#include <cstdint>
#include <string>

namespace attnlab {

enum class score_kind { softmax, relu, hyperbolic };

struct score_fn {
    score_kind kind = score_kind::softmax;
    // relu
    float relu_bias = 0.0f;     // b
    bool relu_row_norm = false;
    // hyperbolic
    float c = 1.0f;
    float beta = 1.0f;
    float gamma = 0.0f;

    // Canonical spec text: "softmax", "relu:b=0,norm=L", "hyperbolic:c=1,beta=1,gamma=0".
    std::string spec() const;
};

const char * score_kind_name(score_kind k);

// Points mapped by the exponential map are pulled inside the ball to norm at
// most (1 − k_ball_eps)/sqrt(c) (as geoopt's projection does), so that large
// vectors (tanh saturating to 1 in float) keep a finite distance.
constexpr double k_ball_eps = 1e-3;

// Exponential map at 0 of the Poincaré ball: tanh(√c‖x‖)·x/(√c‖x‖), projected
// as above. out may alias x.
void poincare_expmap0(const float * x, int d, float c, float * out);
void poincare_expmap0(const double * x, int d, double c, double * out);

// Möbius addition x ⊕_c y (d-vectors, double): the literal formula.
void mobius_add(const double * x, const double * y, int d, double c, double * out);

// d_c(x, y) = (2/√c)·artanh(√c‖(−x) ⊕_c y‖), literal, in double (for references).
double poincare_distance_mobius(const double * x, const double * y, int d, double c);

// The same distance in the equivalent, better conditioned form
// (1/√c)·arcosh(1 + 2c‖x−y‖² / ((1 − c‖x‖²)(1 − c‖y‖²))), given ‖x−y‖² and
// the two conformal factors 1 − c‖·‖². This is what the kernel evaluates.
inline double poincare_distance_from_parts(double diff2, double lam_x, double lam_y, double c) {
    const double t = 2.0 * c * diff2 / (lam_x * lam_y);
    // arcosh(1 + t) = log1p(t + sqrt(t (t + 2))), accurate for small t.
    return std::log1p(t + std::sqrt(t * (t + 2.0))) / std::sqrt(c);
}

} // namespace attnlab
