// One head through the Poincaré ball (core/graph/hyperbolic_head.h) against a
// float64 brute force: softmax rows from Q and K, the hyperbolic score with
// the literal exp map and Möbius-addition distance (attention/score.h's
// poincare_distance_mobius), the median rule for c.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "base/error.h"
#include "base/job.h"
#include "data/capture.h"
#include "graph/attention_graph.h"
#include "graph/hyperbolic_head.h"

using namespace attnlab;

namespace {

qkv_capture random_capture(int L, int d, uint32_t seed) {
    qkv_capture cap;
    cap.info.n_layer = 3;
    cap.info.n_head = 2;
    cap.info.n_head_kv = 1;
    cap.info.head_dim = d;
    cap.info.layers = {2};
    cap.info.token_ids.assign(L, 3);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    layer_qkv lq;
    lq.layer = 2;
    for (int i = 0; i < L * 2 * d; ++i) lq.q.push_back(1.5f * nd(rng));
    for (int i = 0; i < L * d; ++i) {
        lq.k.push_back(nd(rng));
        lq.v.push_back(nd(rng));
    }
    cap.layers.push_back(lq);
    return cap;
}

// tanh(sqrt(c)|x|) x / (sqrt(c)|x|): no projection needed for these norms.
std::vector<double> expmap_ref(const float * x, int d, double c) {
    double n = 0;
    for (int i = 0; i < d; ++i) n += double(x[i]) * x[i];
    n = std::sqrt(n);
    const double f = n > 0 ? std::tanh(std::sqrt(c) * n) / (std::sqrt(c) * n) : 1.0;
    std::vector<double> out(d);
    for (int i = 0; i < d; ++i) out[i] = f * x[i];
    return out;
}

} // namespace

TEST_CASE("hyperbolic head: auto c, softmax vs hyperbolic weights, agreement and TV", "[graph]") {
    const int L = 20, d = 6, n = 16, h = 1;
    const qkv_capture cap = random_capture(L, d, 9);
    const attention_layer_io io = capture_layer_io(cap, 0);
    const float * Q = cap.layers[0].q.data();
    const float * K = cap.layers[0].k.data();
    auto q = [&](int t) { return Q + (size_t(t) * 2 + h) * d; };
    auto k = [&](int t) { return K + size_t(t) * d; };

    // c: 1 / the median of the 2n squared norms (element n of the sorted list).
    std::vector<double> n2;
    for (int t = 0; t < n; ++t) {
        double a = 0, b = 0;
        for (int i = 0; i < d; ++i) { a += double(q(t)[i]) * q(t)[i]; b += double(k(t)[i]) * k(t)[i]; }
        n2.push_back(a);
        n2.push_back(b);
    }
    std::sort(n2.begin(), n2.end());
    const double c = hyperbolic_auto_c(io, h, n);
    CHECK(c == Approx(1.0 / n2[n]).epsilon(1e-14));

    score_fn sf;
    sf.c = float(c);
    sf.beta = 1.7f;
    sf.gamma = 0.3f;
    const score_comparison r = score_compare_hyperbolic(io, h, n, sf);
    REQUIRE(r.n == n);
    const double s = 1.0 / std::sqrt(double(d)), cc = double(sf.c);
    int agree = 0;
    double tv = 0;
    for (int i = 0; i < n; ++i) {
        std::vector<double> ls(i + 1), lh(i + 1);
        const std::vector<double> qh = expmap_ref(q(i), d, cc);
        for (int j = 0; j <= i; ++j) {
            double dot = 0;
            for (int e = 0; e < d; ++e) dot += double(q(i)[e]) * k(j)[e];
            ls[j] = s * dot;
            const std::vector<double> kh = expmap_ref(k(j), d, cc);
            lh[j] = -double(sf.beta) * poincare_distance_mobius(qh.data(), kh.data(), d, cc) - double(sf.gamma);
        }
        auto softmax = [](std::vector<double> x) {
            const double mx = *std::max_element(x.begin(), x.end());
            double z = 0;
            for (double & v : x) z += (v = std::exp(v - mx));
            for (double & v : x) v /= z;
            return x;
        };
        const std::vector<double> ws = softmax(ls), wh = softmax(lh);
        double row_tv = 0;
        for (int j = 0; j <= i; ++j) {
            CHECK(r.softmax_w[size_t(i) * n + j] == Approx(ws[j]).epsilon(1e-6).margin(1e-9));
            CHECK(r.hyper_w[size_t(i) * n + j] == Approx(wh[j]).epsilon(1e-5).margin(1e-9));
            row_tv += 0.5 * std::fabs(ws[j] - wh[j]);
        }
        for (int j = i + 1; j < n; ++j) CHECK(std::isnan(r.softmax_w[size_t(i) * n + j]));
        const int as = int(std::max_element(ws.begin(), ws.end()) - ws.begin());
        const int ah = int(std::max_element(wh.begin(), wh.end()) - wh.begin());
        CHECK(r.top_softmax[i] == as);
        CHECK(r.top_hyper[i] == ah);
        agree += as == ah;
        tv += row_tv;
    }
    CHECK(r.top1_agree == agree);
    CHECK(r.mean_tv == Approx(tv / n).epsilon(1e-5));
    CHECK(r.mean_tv > 0.01);   // the two scores differ: a real comparison

    // Query/key distances in the ball: the literal Möbius form.
    const std::vector<double> D = hyperbolic_qk_distances(io, h, n, c);
    REQUIRE(D.size() == size_t(4 * n * n));
    auto pt = [&](int p) { return p < n ? expmap_ref(q(p), d, c) : expmap_ref(k(p - n), d, c); };
    for (int a = 0; a < 2 * n; a += 3) {
        for (int b = 0; b < 2 * n; b += 5) {
            const double ref = a == b ? 0.0 : poincare_distance_mobius(pt(a).data(), pt(b).data(), d, c);
            CHECK(D[size_t(a) * 2 * n + b] == Approx(ref).epsilon(1e-9).margin(1e-12));
        }
    }
}

TEST_CASE("hyperbolic head: embedding of queries and keys, and of the head's graph", "[graph]") {
    const int n = 12;
    const qkv_capture cap = random_capture(16, 6, 4);
    head_embed_options opt;
    opt.n = n;
    opt.iters = 150;
    opt.score.beta = 2.0f;
    const head_embedding e = head_embed_hyperbolic(cap, 0, 0, opt);
    const attention_layer_io io = capture_layer_io(cap, 0);
    CHECK(e.layer == 2);
    CHECK(e.n == n);
    CHECK(e.c == Approx(double(float(hyperbolic_auto_c(io, 0, n)))));
    REQUIRE(e.embed.n == 2 * n);
    REQUIRE(e.token.size() == size_t(2 * n));
    for (int p = 0; p < 2 * n; ++p) {
        CHECK(e.token[p] == p % n);
        CHECK(int(e.is_key[p]) == (p >= n ? 1 : 0));
        CHECK(e.embed.xy[2 * p] * e.embed.xy[2 * p] + e.embed.xy[2 * p + 1] * e.embed.xy[2 * p + 1] < 1.0);
    }
    // The reported distortion is against the ball distances, scaled so the largest is 6.
    std::vector<double> D = hyperbolic_qk_distances(io, 0, n, e.c);
    double dmax = 0;
    for (double &v : D) dmax = std::max(dmax, v);
    for (int a = 0; a < 2 * n; ++a)
        for (int b = 0; b < 2 * n; ++b)
            if (a != b) D[size_t(a) * 2 * n + b] = std::max(D[size_t(a) * 2 * n + b], 1e-6);
    CHECK(e.embed.scale == Approx(6.0 / dmax));
    double mean = 0, worst = 0;
    poincare_distortion(e.embed.xy, D, 2 * n, e.embed.scale, &mean, &worst);
    CHECK(e.embed.mean_distortion == Approx(mean).epsilon(1e-9));
    // The weights are the comparison at the curvature used.
    score_fn sf = opt.score;
    sf.c = float(e.c);
    const score_comparison r = score_compare_hyperbolic(io, 0, n, sf);
    CHECK(e.weights.softmax_w.size() == r.softmax_w.size());
    CHECK(e.weights.top1_agree == r.top1_agree);
    CHECK(e.weights.mean_tv == r.mean_tv);

    if (graph_have_boost()) {
        opt.mode = head_embed_mode::graph_head;
        const head_embedding g = head_embed_hyperbolic(cap, 0, 0, opt);
        CHECK(g.embed.n == n);
        CHECK(g.token.size() == size_t(n));
        opt.mode = head_embed_mode::graph_layer;
        CHECK(head_embed_hyperbolic(cap, 0, 0, opt).embed.n == n);
    }
    job_progress cancelled;
    cancelled.cancel();
    CHECK_THROWS_AS(head_embed_hyperbolic(cap, 0, 0, opt, &cancelled), job_cancelled);
}
