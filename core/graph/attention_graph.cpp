#include "graph/attention_graph.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "base/error.h"
#include "data/capture.h"

#ifdef ATTNLAB_HAVE_BOOST_GRAPH
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/push_relabel_max_flow.hpp>
#endif

namespace attnlab {

#ifdef ATTNLAB_HAVE_BOOST_GRAPH
bool graph_have_boost() { return true; }
#else
bool graph_have_boost() { return false; }
#endif

layered_graph attention_graph_from_capture(const qkv_capture & cap, int layer_first, int layer_last, int max_tokens,
                                           job_progress * job) {
    const std::string file = cap.info.model_id.empty() ? std::string("trace") : cap.info.model_id;
    if (layer_first > layer_last) throw input_error(file, "layer_range", "first layer is after the last");
    std::vector<size_t> idx;
    for (size_t k = 0; k < cap.layers.size(); k++) {
        if (cap.layers[k].layer >= layer_first && cap.layers[k].layer <= layer_last) idx.push_back(k);
    }
    if (idx.empty()) {
        throw input_error(file, "layer_range", "no captured layer in " + std::to_string(layer_first) + "-" + std::to_string(layer_last));
    }
    int n = cap.info.n_tokens();
    if (max_tokens > 0) n = std::min(n, max_tokens);
    if (n < 1) throw input_error(file, "tokens", "the capture holds no tokens");
    if (n > k_graph_max_tokens) {
        throw input_error(file, "tokens", std::to_string(n) + " tokens exceed the attention-graph limit of " +
                                              std::to_string(k_graph_max_tokens) + " (use max_tokens)");
    }
    layered_graph g;
    g.n_tokens = n;
    for (size_t t = 0; t < idx.size(); t++) {
        job_step(job, double(t) / double(idx.size()), "attention of layer " + std::to_string(cap.layers[idx[t]].layer));
        const attention_layer_io io = capture_layer_io(cap, idx[t]);
        std::vector<double> a(size_t(n) * n, 0.0);
        const int H = io.n_head, hd = io.head_dim;
        const int qs = io.n_head * hd, ks = io.n_head_kv * hd;
        #pragma omp parallel for schedule(dynamic, 4)
        for (int i = 0; i < n; i++) {
            std::vector<double> s(size_t(i) + 1);
            for (int h = 0; h < H; h++) {
                const float * q = io.q + size_t(i) * qs + size_t(h) * hd;
                const int g_kv = io.kv_head_of(h);
                double mx = -1e300;
                for (int j = 0; j <= i; j++) {
                    const float * k = io.k + size_t(j) * ks + size_t(g_kv) * hd;
                    double dot = 0.0;
                    for (int e = 0; e < hd; e++) dot += double(q[e]) * double(k[e]);
                    s[j] = dot * io.scale;
                    mx = std::max(mx, s[j]);
                }
                double sum = 0.0;
                for (int j = 0; j <= i; j++) {
                    s[j] = std::exp(s[j] - mx);
                    sum += s[j];
                }
                for (int j = 0; j <= i; j++) a[size_t(i) * n + j] += s[j] / sum / H;
            }
        }
        g.layers.push_back(cap.layers[idx[t]].layer);
        g.a.push_back(std::move(a));
    }
    job_step(job, 1.0, "attention graph");
    return g;
}

layered_graph attention_graph_from_selections(const std::vector<selection> & per_layer) {
    layered_graph g;
    if (per_layer.empty()) return g;
    const int n = per_layer.front().n_tokens;
    if (n > k_graph_max_tokens) {
        throw input_error("selection", "n_tokens", std::to_string(n) + " exceeds the attention-graph limit of " + std::to_string(k_graph_max_tokens));
    }
    g.n_tokens = n;
    std::vector<int32_t> keys;
    for (size_t l = 0; l < per_layer.size(); l++) {
        const selection & s = per_layer[l];
        if (s.n_tokens != n) throw input_error("selection", "n_tokens", "layers disagree on the token count");
        std::vector<double> a(size_t(n) * n, 0.0);
        for (int i = 0; i < n; i++) {
            selection_row_keys(s, i, keys);
            for (int32_t j : keys) a[size_t(i) * n + j] = 1.0 / double(keys.size());
        }
        g.layers.push_back(int(l));
        g.a.push_back(std::move(a));
    }
    return g;
}

std::vector<double> attention_residual_mix(const std::vector<double> & a, int n, double residual) {
    std::vector<double> m(size_t(n) * n);
    for (int i = 0; i < n; i++) {
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            double x = (1.0 - residual) * a[size_t(i) * n + j] + (i == j ? residual : 0.0);
            m[size_t(i) * n + j] = x;
            sum += x;
        }
        if (sum > 0.0) {
            for (int j = 0; j < n; j++) m[size_t(i) * n + j] /= sum;
        } else {
            m[size_t(i) * n + i] = 1.0;
        }
    }
    return m;
}

std::vector<double> attention_rollout(const layered_graph & g, double residual) {
    const int n = g.n_tokens;
    std::vector<double> r(size_t(n) * n, 0.0);
    for (int i = 0; i < n; i++) r[size_t(i) * n + i] = 1.0;
    std::vector<double> next(size_t(n) * n);
    for (int l = 0; l < g.n_transitions(); l++) {
        const std::vector<double> m = attention_residual_mix(g.a[l], n, residual);
        // next = m * r: each level's mixing acts on what the level below already holds
        #pragma omp parallel for
        for (int i = 0; i < n; i++) {
            double * out = &next[size_t(i) * n];
            std::fill(out, out + n, 0.0);
            for (int k = 0; k < n; k++) {
                const double w = m[size_t(i) * n + k];
                if (w == 0.0) continue;
                const double * rk = &r[size_t(k) * n];
                for (int j = 0; j < n; j++) out[j] += w * rk[j];
            }
        }
        r.swap(next);
    }
    return r;
}

std::vector<double> attention_rollout_row(const layered_graph & g, int token, double residual) {
    const int n = g.n_tokens;
    if (token < 0 || token >= n) throw input_error("graph", "token", std::to_string(token) + " is outside 0.." + std::to_string(n - 1));
    // row vector e_token^T times Ã_top ... Ã_0, from the top down
    std::vector<double> v(n, 0.0), next(n);
    v[token] = 1.0;
    for (int l = g.n_transitions() - 1; l >= 0; l--) {
        const std::vector<double> m = attention_residual_mix(g.a[l], n, residual);
        std::fill(next.begin(), next.end(), 0.0);
        for (int k = 0; k < n; k++) {
            if (v[k] == 0.0) continue;
            for (int j = 0; j < n; j++) next[j] += v[k] * m[size_t(k) * n + j];
        }
        v.swap(next);
    }
    return v;
}

#ifdef ATTNLAB_HAVE_BOOST_GRAPH
namespace {

using flow_traits = boost::adjacency_list_traits<boost::vecS, boost::vecS, boost::directedS>;
using flow_graph = boost::adjacency_list<
    boost::vecS, boost::vecS, boost::directedS, boost::no_property,
    boost::property<boost::edge_capacity_t, int64_t,
                    boost::property<boost::edge_residual_capacity_t, int64_t,
                                    boost::property<boost::edge_reverse_t, flow_traits::edge_descriptor>>>>;

// Capacities are fixed point (k_flow_unit per unit weight): integer push-relabel
// terminates exactly, where floating residuals can cycle on rounding dust.
constexpr double k_flow_unit = 1e12;

void add_flow_edge(flow_graph & fg, int u, int v, double cap) {
    auto capm = boost::get(boost::edge_capacity, fg);
    auto rev = boost::get(boost::edge_reverse, fg);
    auto e = boost::add_edge(u, v, fg).first;
    auto er = boost::add_edge(v, u, fg).first;
    capm[e] = int64_t(std::llround(cap * k_flow_unit));
    capm[er] = 0;
    rev[e] = er;
    rev[er] = e;
}

} // namespace

std::vector<double> attention_flow(const layered_graph & g, int out_token, double residual, job_progress * job) {
    const int N = g.n_tokens;
    if (out_token < 0 || out_token >= N) {
        throw input_error("graph", "token", std::to_string(out_token) + " is outside 0.." + std::to_string(N - 1));
    }
    std::vector<std::vector<double>> mix;
    bool causal = true;
    for (const auto & a : g.a) {
        mix.push_back(attention_residual_mix(a, N, residual));
        const auto & m = mix.back();
        for (int i = 0; i < N && causal; i++)
            for (int j = i + 1; j < N; j++)
                if (m[size_t(i) * N + j] != 0.0) { causal = false; break; }
    }
    // causal: nothing above out_token is reachable from it
    const int n = causal ? out_token + 1 : N;
    const int64_t nodes = int64_t(n) * g.n_levels();
    int64_t edges = 0;
    for (const auto & m : mix)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) edges += m[size_t(i) * N + j] > 0.0;
    if (nodes > k_flow_max_nodes || edges > k_flow_max_edges) {
        throw input_error("graph", "tokens x layers",
                          "attention flow on " + std::to_string(n) + " tokens x " + std::to_string(g.n_levels()) + " levels = " +
                              std::to_string(nodes) + " nodes, " + std::to_string(edges) + " edges exceeds the limit of " +
                              std::to_string(k_flow_max_nodes) + " nodes and " + std::to_string(k_flow_max_edges) +
                              " edges (use fewer tokens or layers)");
    }
    flow_graph fg{size_t(nodes)};
    for (int l = 0; l < g.n_transitions(); l++) {
        const auto & m = mix[l];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                const double c = m[size_t(i) * N + j];
                if (c > 0.0) add_flow_edge(fg, (l + 1) * n + i, l * n + j, c);  // query at level l+1 reads key at level l
            }
    }
    std::vector<double> out(N, 0.0);
    const int src = g.n_transitions() * n + out_token;
    for (int j = 0; j < n; j++) {
        job_step(job, double(j) / n, "attention flow");
        const int sink = j;  // level 0
        if (sink == src) {   // no transitions: the token is its own input
            out[j] = 1.0;
            continue;
        }
        out[j] = double(boost::push_relabel_max_flow(fg, src, sink)) / k_flow_unit;
    }
    job_step(job, 1.0, "attention flow");
    return out;
}

#else
std::vector<double> attention_flow(const layered_graph &, int, double, job_progress *) {
    throw std::runtime_error("attention flow needs Boost.Graph (libboost-graph-dev), which this build lacks");
}
#endif

} // namespace attnlab
