// Information-flow graphs: rollout vs an Eigen matrix product, max-flow vs a
// brute-force min cut, BFS reachability vs boolean matrix powers, the
// attention graph of a capture vs the float64 reference, Poincaré embedding.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <cmath>
#include <random>

#include "attention/attention.h"
#include "graph/attention_graph.h"
#include "graph/poincare.h"
#include "graph/reachability.h"
#include "base/error.h"
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
    if (!graph_have_boost()) { WARN("built without Boost.Graph: skipped"); return; }
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
    if (!graph_have_boost()) { WARN("built without Boost.Graph: skipped"); return; }
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
    if (!graph_have_boost()) { WARN("built without Boost.Graph: skipped"); return; }
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
    qkv_capture cap;
    cap.info.n_layer = 1;
    cap.info.n_head = 1;
    cap.info.n_head_kv = 1;
    cap.info.head_dim = d;
    cap.info.layers = {0};
    cap.info.token_ids.assign(n, 1);
    layer_qkv lq;
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int t = 0; t < n * d; t++) {
        lq.q.push_back(nd(rng));
        lq.k.push_back(nd(rng));
        lq.v.push_back(nd(rng));
    }
    cap.layers.push_back(lq);
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
    if (!graph_have_boost()) { WARN("built without Boost.Graph: skipped"); return; }
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

    if (!graph_have_boost()) return;
    // shortest paths over -log(weight): a chain 0 - 1 - 2 with weights 0.5 and 0.25
    std::vector<double> w = {0, 0.5, 0, 0, 0, 0.25, 0, 0, 0};
    std::vector<double> gd = graph_distances(w, 3, 0.01);
    CHECK(gd[0 * 3 + 2] == Approx(std::log(2.0) + std::log(4.0)));
    CHECK(gd[2 * 3 + 0] == gd[0 * 3 + 2]);
}
