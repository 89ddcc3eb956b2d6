#include "graph/reachability.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include <stdexcept>

#include "base/error.h"

#ifdef ATTNLAB_HAVE_BOOST_GRAPH
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/breadth_first_search.hpp>
#endif

namespace attnlab {

namespace {

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

} // namespace

bool sparse_pattern::attends(int i, int j) const {
    if (j > i || j < 0) return false;
    const int dist = i - j;
    if (dist < w) return true;
    switch (kind) {
    case pattern_kind::window:
        return false;
    case pattern_kind::strided:
        return m > 0 && dist % m == 0;
    case pattern_kind::bigbird: {
        if (j < g || i < g) return true;
        if (r <= 0) return false;
        // a key is random-kept with probability r / (i + 1): about r per row
        const uint64_t h = splitmix64(seed ^ (uint64_t(uint32_t(i)) << 32) ^ uint64_t(uint32_t(j)));
        return double(h >> 11) * (1.0 / 9007199254740992.0) < double(r) / double(i + 1);
    }
    }
    return false;
}

std::string sparse_pattern::spec() const {
    switch (kind) {
    case pattern_kind::window: return "window:w=" + std::to_string(w);
    case pattern_kind::strided: return "strided:m=" + std::to_string(m) + ",w=" + std::to_string(w);
    case pattern_kind::bigbird:
        return "bigbird:w=" + std::to_string(w) + ",g=" + std::to_string(g) + ",r=" + std::to_string(r) + ",seed=" + std::to_string(seed);
    }
    return "";
}

sparse_pattern sparse_pattern_parse(const std::string & spec) {
    sparse_pattern p;
    std::string head = spec, rest;
    const size_t colon = spec.find(':');
    if (colon != std::string::npos) {
        head = spec.substr(0, colon);
        rest = spec.substr(colon + 1);
    }
    if (head == "window") p.kind = pattern_kind::window;
    else if (head == "strided") p.kind = pattern_kind::strided;
    else if (head == "bigbird") p.kind = pattern_kind::bigbird;
    else throw input_error("--pattern", "pattern", "\"" + head + "\" is not one of window, strided, bigbird");
    bool have_w = false, have_m = false;
    std::stringstream ss(rest);
    std::string kv;
    while (std::getline(ss, kv, ',')) {
        if (kv.empty()) continue;
        const size_t eq = kv.find('=');
        if (eq == std::string::npos) throw input_error("--pattern", "pattern", "\"" + kv + "\" is not key=value");
        const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
        char * end = nullptr;
        const long long x = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || x < 0 || x > (1LL << 30)) throw input_error("--pattern", "pattern." + k, "\"" + v + "\" is not a count");
        if (k == "w") { p.w = int(x); have_w = true; }
        else if (k == "m" && p.kind == pattern_kind::strided) { p.m = int(x); have_m = true; }
        else if (k == "g" && p.kind == pattern_kind::bigbird) p.g = int(x);
        else if (k == "r" && p.kind == pattern_kind::bigbird) p.r = int(x);
        else if (k == "seed" && p.kind == pattern_kind::bigbird) p.seed = uint64_t(x);
        else throw input_error("--pattern", "pattern." + k, "not a key of " + head);
    }
    if (!have_w || p.w < 1) throw input_error("--pattern", "pattern.w", "needs w >= 1 (the window keeps the diagonal)");
    if (p.kind == pattern_kind::strided && (!have_m || p.m < 1)) throw input_error("--pattern", "pattern.m", "strided needs m >= 1");
    return p;
}

namespace {

#ifdef ATTNLAB_HAVE_BOOST_GRAPH
using bfs_graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;

// BFS distances in the pattern graph; reverse = false walks i -> j (i attends
// j), reverse = true walks j -> i.
std::vector<int> pattern_bfs(const sparse_pattern & p, int n, int start, bool reverse) {
    if (n < 1 || n > k_reach_max_tokens) {
        throw input_error("--tokens", "n_tokens", std::to_string(n) + " is outside 1.." + std::to_string(k_reach_max_tokens) + " (reachability limit)");
    }
    if (start < 0 || start >= n) throw input_error("--token", "token", std::to_string(start) + " is outside 0.." + std::to_string(n - 1));
    bfs_graph gr(n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)  // the diagonal is a self-loop: it never shortens a path
            if (p.attends(i, j)) {
                if (reverse) boost::add_edge(j, i, gr);
                else boost::add_edge(i, j, gr);
            }
    std::vector<int> dist(n, -1);
    dist[start] = 0;
    boost::breadth_first_search(
        gr, boost::vertex(start, gr),
        boost::visitor(boost::make_bfs_visitor(boost::record_distances(boost::make_iterator_property_map(dist.begin(), boost::get(boost::vertex_index, gr)), boost::on_tree_edge()))));
    return dist;
}
#else
std::vector<int> pattern_bfs(const sparse_pattern &, int, int, bool) {
    throw std::runtime_error("pattern reachability needs Boost.Graph (libboost-graph-dev), which this build lacks");
}
#endif

} // namespace

std::vector<int> reach_layers_to(const sparse_pattern & p, int n_tokens, int dst) { return pattern_bfs(p, n_tokens, dst, false); }

std::vector<int> reach_layers_from(const sparse_pattern & p, int n_tokens, int src) { return pattern_bfs(p, n_tokens, src, true); }

std::vector<int> reach_layers_to_layered(const layered_graph & g, int dst, double threshold) {
    const int n = g.n_tokens;
    if (dst < 0 || dst >= n) throw input_error("graph", "token", std::to_string(dst) + " is outside 0.." + std::to_string(n - 1));
    // Breadth-first over the layered graph from the bottom: held[t] is the set
    // of input tokens whose information token t carries at the current level
    // (a bitset). One level up, t carries its own set (the residual stream)
    // and the sets of the keys it reads with weight >= threshold. The first
    // level at which dst carries j is the fewest layers (from the bottom of
    // the range) that j needs to reach dst.
    const int words = (n + 63) / 64;
    std::vector<uint64_t> held(size_t(n) * words, 0), next(size_t(n) * words);
    for (int t = 0; t < n; t++) held[size_t(t) * words + t / 64] |= uint64_t(1) << (t % 64);
    std::vector<int> out(n, -1);
    out[dst] = 0;
    for (int l = 0; l < g.n_transitions(); l++) {
        const std::vector<double> & a = g.a[l];
        next = held;
        for (int i = 0; i < n; i++) {
            uint64_t * ni = &next[size_t(i) * words];
            for (int j = 0; j < n; j++) {
                if (j == i || a[size_t(i) * n + j] < threshold) continue;
                const uint64_t * hj = &held[size_t(j) * words];
                for (int w = 0; w < words; w++) ni[w] |= hj[w];
            }
        }
        held.swap(next);
        const uint64_t * hd = &held[size_t(dst) * words];
        for (int j = 0; j < n; j++)
            if (out[j] < 0 && (hd[j / 64] >> (j % 64) & 1)) out[j] = l + 1;
    }
    return out;
}

} // namespace attnlab
