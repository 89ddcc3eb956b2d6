// Information-flow graphs: rollout vs an Eigen matrix product, max-flow vs a
// brute-force min cut, BFS reachability vs boolean matrix powers, the
// attention graph of a capture vs the float64 reference, Poincaré embedding,
// one head's softmax vs hyperbolic attention and its embedding.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "attention/attention.h"
#include "graph/attention_graph.h"
#include "graph/hyperbolic_head.h"
#include "graph/poincare.h"
#include "graph/reachability.h"
#include "base/error.h"
#include "base/job.h"
#include "io/trace.h"
#include "base/data_path.h"
#include "data/capture.h"

using namespace attnlab;

namespace {

// Random row-stochastic transitions; causal ones are zero above the diagonal.
layered_graph random_graph(int n, int layers, bool causal, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    layered_graph g;
    g.n_tokens = n;
    for (int l = 0; l < layers; l++) {
        std::vector<double> a(size_t(n) * n, 0.0);
        for (int i = 0; i < n; i++) {
            double s = 0.0;
            for (int j = 0; j < n; j++) {
                if (causal && j > i) continue;
                a[size_t(i) * n + j] = u(rng) < 0.3 ? 0.0 : u(rng);
                s += a[size_t(i) * n + j];
            }
            for (int j = 0; j < n; j++) a[size_t(i) * n + j] = s > 0 ? a[size_t(i) * n + j] / s : 0.0;
        }
        g.layers.push_back(l);
        g.a.push_back(a);
    }
    return g;
}

// One captured layer (model layer `layer` of layer + 1) of random Q, K, V for
// n tokens: n_head query heads over n_kv KV heads, queries times q_scale.
qkv_capture random_capture(int n, int n_head, int n_kv, int d, int layer, uint32_t seed, float q_scale = 1.0f) {
    qkv_capture cap;
    cap.info.n_layer = layer + 1;
    cap.info.n_head = n_head;
    cap.info.n_head_kv = n_kv;
    cap.info.head_dim = d;
    cap.info.layers = {layer};
    cap.info.token_ids.assign(n, 1);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    layer_qkv l;
    l.layer = layer;
    for (int i = 0; i < n * n_head * d; i++) l.q.push_back(q_scale * nd(rng));
    for (int i = 0; i < n * n_kv * d; i++) {
        l.k.push_back(nd(rng));
        l.v.push_back(nd(rng));
    }
    cap.layers.push_back(l);
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

Eigen::MatrixXd mixed(const std::vector<double> & a, int n) {
    Eigen::MatrixXd m(n, n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) m(i, j) = 0.5 * a[size_t(i) * n + j] + (i == j ? 0.5 : 0.0);
    for (int i = 0; i < n; i++) m.row(i) /= m.row(i).sum();
    return m;
}

} // namespace

TEST_CASE("graph: rollout equals the product of residual-mixed matrices", "[graph]") {
    const int n = 7;
    layered_graph g = random_graph(n, 3, true, 11);
    Eigen::MatrixXd ref = mixed(g.a[2], n) * mixed(g.a[1], n) * mixed(g.a[0], n);
    std::vector<double> r = attention_rollout(g, 0.5);
    for (int i = 0; i < n; i++) {
        std::vector<double> row = attention_rollout_row(g, i, 0.5);
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            CHECK(r[size_t(i) * n + j] == Approx(ref(i, j)).margin(1e-12));
            CHECK(row[j] == Approx(ref(i, j)).margin(1e-12));
            sum += row[j];
            if (j > i) CHECK(row[j] == 0.0);  // causal: nothing from the future
        }
        CHECK(sum == Approx(1.0));
    }
    // a zero row becomes the identity row; residual 1 leaves the identity
    std::vector<double> m = attention_residual_mix(std::vector<double>(4, 0.0), 2, 0.0);
    CHECK(m == std::vector<double>{1, 0, 0, 1});
    std::vector<double> id = attention_rollout(g, 1.0);
    for (int i = 0; i < n; i++) CHECK(id[size_t(i) * n + i] == 1.0);
}

TEST_CASE("graph: attention flow equals the brute-force min cut", "[graph]") {
    REQUIRE(graph_have_boost());   // Boost.Graph is a required dependency: no silent skip
    for (bool causal : {true, false}) {
        const int n = 3, layers = 2, levels = layers + 1, V = n * levels;
        layered_graph g = random_graph(n, layers, causal, causal ? 5 : 6);
        // capacities of the flow network, as the paper defines them
        std::vector<double> cap(size_t(V) * V, 0.0);
        for (int l = 0; l < layers; l++) {
            std::vector<double> m = attention_residual_mix(g.a[l], n, 0.5);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) cap[size_t((l + 1) * n + i) * V + (l * n + j)] = m[size_t(i) * n + j];
        }
        for (int out = 0; out < n; out++) {
            std::vector<double> flow = attention_flow(g, out, 0.5);
            const int src = layers * n + out;
            for (int sink = 0; sink < n; sink++) {
                // every cut: a vertex set S with the source and without the sink
                double best = 1e300;
                for (int mask = 0; mask < (1 << V); mask++) {
                    if (!(mask >> src & 1) || (mask >> sink & 1)) continue;
                    double c = 0.0;
                    for (int u = 0; u < V; u++)
                        for (int v = 0; v < V; v++)
                            if ((mask >> u & 1) && !(mask >> v & 1)) c += cap[size_t(u) * V + v];
                    best = std::min(best, c);
                }
                CHECK(flow[sink] == Approx(best).margin(1e-9));
            }
        }
    }
}

TEST_CASE("graph: attention flow refuses graphs over its size limit", "[graph]") {
    REQUIRE(graph_have_boost());   // Boost.Graph is a required dependency: no silent skip
    layered_graph g;
    g.n_tokens = 200;
    for (int l = 0; l < 50; l++) {
        g.layers.push_back(l);
        g.a.push_back(std::vector<double>(200 * 200, 1.0 / 200));
    }
    try {
        attention_flow(g, 199);
        FAIL("no error");
    } catch (const input_error & e) {
        CHECK(e.field() == "tokens x layers");
        CHECK(std::string(e.what()).find(std::to_string(k_flow_max_nodes)) != std::string::npos);
    }
    CHECK_THROWS_AS(attention_flow(g, 200), input_error);
}

TEST_CASE("graph: pattern reachability equals boolean matrix powers", "[graph]") {
    REQUIRE(graph_have_boost());   // Boost.Graph is a required dependency: no silent skip
    const int n = 40;
    for (const char * spec : {"window:w=3", "strided:m=7,w=2", "bigbird:w=2,g=1,r=1,seed=3", "window:w=1"}) {
        sparse_pattern p = sparse_pattern_parse(spec);
        std::vector<std::vector<char>> M(n, std::vector<char>(n, 0));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) M[i][j] = p.attends(i, j);
        // P = M^k as booleans; first k with P[i][j] is the answer for j -> i
        std::vector<std::vector<int>> first(n, std::vector<int>(n, -1));
        std::vector<std::vector<char>> P(n, std::vector<char>(n, 0));
        for (int i = 0; i < n; i++) { P[i][i] = 1; first[i][i] = 0; }
        for (int k = 1; k <= n; k++) {
            std::vector<std::vector<char>> Q(n, std::vector<char>(n, 0));
            for (int i = 0; i < n; i++)
                for (int m = 0; m < n; m++)
                    if (M[i][m])
                        for (int j = 0; j < n; j++)
                            if (P[m][j]) Q[i][j] = 1;
            P = Q;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    if (P[i][j] && first[i][j] < 0) first[i][j] = k;
        }
        for (int i = 0; i < n; i += 3) {
            std::vector<int> to = reach_layers_to(p, n, i);
            std::vector<int> from = reach_layers_from(p, n, i);
            for (int j = 0; j < n; j++) {
                CHECK(to[j] == first[i][j]);
                CHECK(from[j] == first[j][i]);
            }
        }
    }
    // window w: token 0 reaches token i after ceil(i / (w - 1)) layers
    std::vector<int> from0 = reach_layers_from(sparse_pattern_parse("window:w=5"), 100, 0);
    for (int i = 1; i < 100; i++) CHECK(from0[i] == (i + 3) / 4);
    CHECK(reach_layers_to(sparse_pattern_parse("window:w=1"), 10, 9)[0] == -1);
    CHECK_THROWS_AS(sparse_pattern_parse("strided:w=2"), input_error);
    CHECK_THROWS_AS(sparse_pattern_parse("ring:w=2"), input_error);
}

TEST_CASE("graph: layered reachability equals products of per-layer adjacency", "[graph]") {
    const int n = 12, layers = 4;
    layered_graph g = random_graph(n, layers, true, 9);
    const double tau = 0.15;
    std::vector<std::vector<char>> P(n, std::vector<char>(n, 0));  // P[i][j]: token i holds j
    for (int i = 0; i < n; i++) P[i][i] = 1;
    std::vector<std::vector<int>> first(n, std::vector<int>(n, -1));
    for (int i = 0; i < n; i++) first[i][i] = 0;
    for (int l = 0; l < layers; l++) {
        std::vector<std::vector<char>> Q(n, std::vector<char>(n, 0));
        for (int i = 0; i < n; i++)
            for (int m = 0; m < n; m++)
                if (m == i || g.a[l][size_t(i) * n + m] >= tau)
                    for (int j = 0; j < n; j++)
                        if (P[m][j]) Q[i][j] = 1;
        P = Q;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                if (P[i][j] && first[i][j] < 0) first[i][j] = l + 1;
    }
    for (int dst = 0; dst < n; dst++) {
        std::vector<int> r = reach_layers_to_layered(g, dst, tau);
        for (int j = 0; j < n; j++) CHECK(r[j] == first[dst][j]);
    }
}

TEST_CASE("graph: attention graph of a capture matches the float64 reference", "[graph]") {
    // one head: the graph's row i times V must be the reference attention output
    const int n = 9, d = 8;
    const qkv_capture cap = random_capture(n, 1, 1, d, 0, 3);
    const layer_qkv & lq = cap.layers[0];
    layered_graph g = attention_graph_from_capture(cap, 0, 0, 0);
    REQUIRE(g.n_transitions() == 1);
    std::vector<double> out(n * d);
    attention_dense_reference_f64(capture_layer_io(cap, 0), out.data());
    for (int i = 0; i < n; i++) {
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            sum += g.a[0][size_t(i) * n + j];
            if (j > i) CHECK(g.a[0][size_t(i) * n + j] == 0.0);
        }
        CHECK(sum == Approx(1.0));
        for (int e = 0; e < d; e++) {
            double o = 0.0;
            for (int j = 0; j < n; j++) o += g.a[0][size_t(i) * n + j] * lq.v[size_t(j) * d + e];
            CHECK(o == Approx(out[size_t(i) * d + e]).margin(1e-9));
        }
    }
    CHECK_THROWS_AS(attention_graph_from_capture(cap, 3, 5, 0), input_error);
}

TEST_CASE("graph: attention graph of the tiny trace", "[graph]") {
    REQUIRE(graph_have_boost());   // Boost.Graph is a required dependency: no silent skip
    qkv_capture cap = trace_read(attnlab::data_path("tests/data/trace_tiny_llama.safetensors"));
    layered_graph g = attention_graph_from_capture(cap, 0, 1, 16);
    CHECK(g.n_tokens == 16);
    CHECK(g.layers == std::vector<int>{0, 1});
    std::vector<double> row = attention_rollout_row(g, 15);
    double s = 0.0;
    for (double x : row) s += x;
    CHECK(s == Approx(1.0));
    std::vector<double> flow = attention_flow(g, 15);
    // the flow into any input is at most what leaves the output token (1)
    for (double f : flow) CHECK(f <= 1.0 + 1e-9);
    CHECK(flow[15] > 0.0);
}

TEST_CASE("graph: Poincaré distances and embedding", "[graph]") {
    const double o[2] = {0, 0}, a[2] = {0.5, 0}, b[2] = {-0.5, 0}, c[2] = {0.3, 0.4}, e[2] = {0, 0.6};
    CHECK(poincare_dist2(o, a) == Approx(std::log(3.0)).epsilon(1e-14));  // 2 artanh(0.5)
    CHECK(poincare_dist2(a, b) == Approx(2 * std::log(3.0)).epsilon(1e-14));
    CHECK(poincare_dist2(o, c) == Approx(std::log(3.0)).epsilon(1e-14));
    // |c - e|^2 = 0.09 + 0.04 = 0.13; (1 - 0.25)(1 - 0.36) = 0.48
    CHECK(poincare_dist2(c, e) == Approx(std::acosh(1 + 2 * 0.13 / 0.48)).epsilon(1e-14));
    CHECK(poincare_dist2(c, e) == poincare_dist2(e, c));
    CHECK(poincare_dist2(c, c) == 0.0);

    // a binary tree of depth 3 (15 nodes), hop distances: trees embed well in hyperbolic space
    const int n = 15;
    std::vector<double> D(n * n, 0.0);
    auto depth = [](int v) { int d = 0; while (v > 0) { v = (v - 1) / 2; d++; } return d; };
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int x = i, y = j, h = 0;
            while (x != y) {
                if (depth(x) >= depth(y)) x = (x - 1) / 2; else y = (y - 1) / 2;
                h++;
            }
            D[i * n + j] = h;
        }
    poincare_options opt;
    opt.iters = 400;
    opt.scale = 1.0;
    poincare_result r = poincare_embed(D, n, opt);
    REQUIRE(r.loss_history.size() >= 2);
    for (size_t k = 1; k < r.loss_history.size(); k++) CHECK(r.loss_history[k] <= r.loss_history[k - 1]);
    CHECK(r.distortion_history.back() < 0.5 * r.distortion_history.front());
    CHECK(r.mean_distortion < 0.25);
    for (int i = 0; i < n; i++) CHECK(r.xy[2 * i] * r.xy[2 * i] + r.xy[2 * i + 1] * r.xy[2 * i + 1] < 1.0);
    double mean = 0, worst = 0;
    poincare_distortion(r.xy, D, n, 1.0, &mean, &worst);
    CHECK(mean == r.mean_distortion);
    CHECK(worst >= 1.0);

    std::vector<double> bad = D;
    bad[1] = 0.0;
    CHECK_THROWS_AS(poincare_embed(bad, n, opt), input_error);

    REQUIRE(graph_have_boost());
    // shortest paths over -log(weight): a chain 0 - 1 - 2 with weights 0.5 and 0.25
    std::vector<double> w = {0, 0.5, 0, 0, 0, 0.25, 0, 0, 0};
    std::vector<double> gd = graph_distances(w, 3, 0.01);
    CHECK(gd[0 * 3 + 2] == Approx(std::log(2.0) + std::log(4.0)));
    CHECK(gd[2 * 3 + 0] == gd[0 * 3 + 2]);
}

// One head through the Poincaré ball (graph/hyperbolic_head.h) against a
// float64 brute force: softmax rows from Q and K, the hyperbolic score with
// the literal exp map and Möbius-addition distance (attention/score.h's
// poincare_distance_mobius), the median rule for c.
TEST_CASE("hyperbolic head: auto c, softmax vs hyperbolic weights, agreement and TV", "[graph]") {
    const int L = 20, d = 6, n = 16, h = 1;
    const qkv_capture cap = random_capture(L, 2, 1, d, 2, 9, 1.5f);
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
    const qkv_capture cap = random_capture(16, 2, 1, 6, 2, 4, 1.5f);
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

    REQUIRE(graph_have_boost());
    {
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
