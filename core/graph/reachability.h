#pragma once
// Reachability of sparse attention patterns across layers: with the same
// pattern in every layer, information at token j reaches token i after k
// layers exactly when the pattern graph (i -> j when i attends j) has a path
// of length k from i to j (the diagonal is always kept: the residual stream),
// so the fewest layers is a BFS distance. Per-layer patterns (a learned
// selection, thresholded attention) use a BFS over the layered graph.
//
// Patterns are local predicates here (causal, j <= i), matching METHODS.md's
// definitions: window(w): i-j < w; strided(m,w): (i-j) % m == 0 or i-j < w;
// bigbird(w,g,r): window w, global tokens 0..g-1 (read by all, reading all),
// and about r random keys per row (a fixed hash of seed, i, j).
#include <cstdint>
#include <string>
#include <vector>

#include "attention/selection.h"
#include "graph/attention_graph.h"

namespace attnlab {

enum class pattern_kind { window, strided, bigbird };

struct sparse_pattern {
    pattern_kind kind = pattern_kind::window;
    int w = 1;        // window (all kinds)
    int m = 0;        // stride (strided)
    int g = 0;        // global tokens (bigbird)
    int r = 0;        // random keys per row (bigbird)
    uint64_t seed = 0;

    bool attends(int i, int j) const;
    std::string spec() const;
};

// "window:w=4", "strided:m=8,w=4", "bigbird:w=4,g=2,r=2[,seed=1]". Throws input_error.
sparse_pattern sparse_pattern_parse(const std::string & spec);

// Largest token count a pattern BFS takes (it enumerates all pairs).
constexpr int k_reach_max_tokens = 16384;

// Fewest layers for information at each token j to reach token dst (-1: never).
std::vector<int> reach_layers_to(const sparse_pattern & p, int n_tokens, int dst);
// Fewest layers for information at token src to reach each token i (-1: never).
std::vector<int> reach_layers_from(const sparse_pattern & p, int n_tokens, int src);

// Per-layer edges (layered graph): a transition keeps the pairs with weight >=
// threshold (plus the diagonal). Returns, per input token j, the fewest
// layers from the bottom of the range after which token dst carries j's
// information (-1: not within the given layers).
std::vector<int> reach_layers_to_layered(const layered_graph & g, int dst, double threshold);

} // namespace attnlab
