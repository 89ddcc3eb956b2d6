#pragma once
// One head seen through the Poincaré ball (the app's Hyperbolic view; METHODS.md,
// score "hyperbolic"): the head's softmax attention next to the hyperbolic
// score's on its first n tokens, and a 2-d Poincaré-disk embedding of either
// its query/key points or its attention graph (poincare.h).
//
// Points in the ball are the exp map at 0 of the raw (unscaled) q and k, as
// the hyperbolic score takes them (attention/score.h). Everything in double.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "attention/attention.h"
#include "attention/score.h"
#include "graph/poincare.h"

namespace attnlab {

struct qkv_capture;
class job_progress;

// c = 1 / median |x|^2 over the first n queries and keys of head h (2n values;
// the element at position n of the sorted list). Raw vectors have norms of
// several units: at c = 1 tanh saturates and every point sits on the ball's
// rim, all distances alike. 1 when the median is 0.
double hyperbolic_auto_c(const attention_layer_io & io, int h, int n);

// Softmax (s q.k) and hyperbolic (-beta d_c(q^, k^) - gamma) attention of head
// h over the causal keys of its first n queries.
struct score_comparison {
    int n = 0;
    std::vector<float> softmax_w, hyper_w;  // n x n row-major, NaN above the diagonal
    std::vector<int> top_softmax, top_hyper;  // per query: its strongest key (first of ties)
    int top1_agree = 0;    // rows whose strongest keys agree
    double mean_tv = 0.0;  // mean over rows of 0.5 * sum_j |A_ij - A^_ij|
};
// hyp: c, beta and gamma of the hyperbolic score (its kind is not read).
score_comparison score_compare_hyperbolic(const attention_layer_io & io, int h, int n, const score_fn & hyp);

// Hyperbolic distances d_c between the first n queries (points 0..n-1) and
// keys (points n..2n-1) of head h in the ball, 2n x 2n row-major.
std::vector<double> hyperbolic_qk_distances(const attention_layer_io & io, int h, int n, double c);

enum class head_embed_mode {
    qk,           // query and key points, their hyperbolic distances (2n points)
    graph_head,   // tokens, shortest -log(weight) paths over this head's softmax weights
    graph_layer,  // the same over the layer's head-averaged attention graph
};

struct head_embed_options {
    int n = 64;                  // tokens (clamped to the capture)
    head_embed_mode mode = head_embed_mode::qk;
    bool auto_c = true;          // c from hyperbolic_auto_c, else score.c
    score_fn score;              // c, beta, gamma of the hyperbolic score
    int iters = 500;             // poincare_embed iterations
};

struct head_embedding {
    int layer = 0, head = 0, n = 0;
    double c = 1.0;                   // the curvature used (auto or given)
    std::vector<int> token;           // per point: its token
    std::vector<uint8_t> is_key;      // per point: 1 for a key (qk mode)
    poincare_result embed;            // xy, distortion, loss, iterations
    score_comparison weights;         // softmax vs hyperbolic on the n tokens
};

// The comparison and the embedding of head h of captured layer li (index into
// cap.layers). Target distances are scaled so the largest is 6 (points stay
// visibly inside the disk: |z| = tanh(d/2)); coincident points get 1e-6.
// job_cancelled when progress is cancelled.
head_embedding head_embed_hyperbolic(const qkv_capture & cap, size_t li, int h, const head_embed_options & opt,
                                     job_progress * progress = nullptr);

} // namespace attnlab
