#pragma once
// Information flow across layers (Abnar & Zuidema 2020, "Quantifying
// Attention Flow in Transformers").
//
// The layered attention graph has one node per (level, token): level 0 is the
// input to the first analysed layer, level l+1 the output of transition l.
// Transition l carries an n x n matrix: a[l][i*n + j] is the weight with which
// query i (level l+1) reads key j (level l), from attention averaged over
// heads, or uniform over a selection's kept keys.
//
// Rollout: R = Ã_top ... Ã_0 with Ã = row-normalise(residual*I + (1-residual)*A)
// (0.5/0.5 in the paper: the residual stream). Flow: the max-flow from the
// output token at the top level to each input token at level 0, with Ã as
// edge capacities; solved with Boost.Graph's push-relabel, one flow per input
// token, so the graph size is limited (k_flow_max_nodes, k_flow_max_edges).
#include <cstdint>
#include <vector>

#include "attention/selection.h"
#include "io/trace.h"
#include "base/job.h"

// Boost.Graph is header-only and comes from the system (libboost-graph-dev);
// the headless GPU build carries no Debian packages, so without it the
// functions that need it throw a clear error instead of breaking the build.
#if defined(__has_include) && !defined(ATTNLAB_NO_BOOST_GRAPH)
#if __has_include(<boost/graph/adjacency_list.hpp>)
#define ATTNLAB_HAVE_BOOST_GRAPH 1
#endif
#endif

namespace attnlab {

// False when built without Boost.Graph (flow, pattern BFS and graph distances then throw).
bool graph_have_boost();

struct layered_graph {
    int n_tokens = 0;
    std::vector<int> layers;               // model layer of each transition, bottom to top
    std::vector<std::vector<double>> a;    // per transition, n x n row-major

    int n_transitions() const { return int(a.size()); }
    int n_levels() const { return int(a.size()) + 1; }
};

// Largest capture prefix the attention graph takes (n^2 doubles per layer).
constexpr int k_graph_max_tokens = 2048;
// Attention flow limits: nodes are tokens x levels, edges the kept weights.
constexpr int64_t k_flow_max_nodes = 8192;
constexpr int64_t k_flow_max_edges = 2000000;

// Head-averaged causal softmax attention (in double) of the captured layers in
// [layer_first, layer_last], on the first max_tokens tokens (a causal prefix is
// exact). Throws input_error when no captured layer is in range or the token
// count exceeds k_graph_max_tokens.
layered_graph attention_graph_from_capture(const qkv_capture & cap, int layer_first, int layer_last, int max_tokens,
                                           job_progress * job = nullptr);

// One transition per selection: row i spreads weight 1/|keys(i)| over its kept keys.
layered_graph attention_graph_from_selections(const std::vector<selection> & per_layer);

// Ã of one transition: residual*I + (1-residual)*A, each row normalised to sum 1
// (a row of zeros becomes the identity row).
std::vector<double> attention_residual_mix(const std::vector<double> & a, int n, double residual);

// Full rollout matrix (n x n, row i: how much each input token contributes to
// output token i), and one row of it in O(n^2 * layers).
std::vector<double> attention_rollout(const layered_graph & g, double residual = 0.5);
std::vector<double> attention_rollout_row(const layered_graph & g, int token, double residual = 0.5);

// Max-flow from (top, out_token) to (0, j) for every input token j (0 for j
// that cannot be reached). Throws input_error naming the limits when the
// graph is larger than k_flow_max_nodes / k_flow_max_edges.
std::vector<double> attention_flow(const layered_graph & g, int out_token, double residual = 0.5, job_progress * job = nullptr);

} // namespace attnlab
