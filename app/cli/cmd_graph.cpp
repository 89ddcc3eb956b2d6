// attnlab-cli graph: information flow of a captured trace for one output
// token: attention rollout, attention flow (max-flow), reachability under
// sparse patterns and under the capture's own thresholded attention, and
// optionally a Poincaré embedding of the tokens.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "graph/attention_graph.h"
#include "graph/poincare.h"
#include "graph/reachability.h"
#include "base/error.h"
#include "io/trace.h"

namespace attnlab_cli {

using nlohmann::json;

namespace {

struct graph_args : common_opts {
    std::string trace, layer_range;
    int token = -1, max_tokens = 64;
    double residual = 0.5, threshold = 0.1;
    std::vector<std::string> patterns;
    bool no_flow = false, embed = false;
};

void parse_range(const std::string & s, int * lo, int * hi) {
    const size_t dash = s.find('-');
    try {
        size_t used = 0;
        if (dash == std::string::npos) {
            *lo = *hi = std::stoi(s, &used);
            if (used != s.size()) throw std::invalid_argument(s);
        } else {
            *lo = std::stoi(s.substr(0, dash), &used);
            if (used != dash) throw std::invalid_argument(s);
            *hi = std::stoi(s.substr(dash + 1), &used);
            if (used != s.size() - dash - 1) throw std::invalid_argument(s);
        }
    } catch (const std::exception &) {
        throw attnlab::input_error("--layer-range", "layer_range", "'" + s + "' is not a or a-b");
    }
    if (*lo < 0 || *hi < *lo) throw attnlab::input_error("--layer-range", "layer_range", "'" + s + "' is empty or negative");
}

// Layers of a capture, up to --max-tokens of them, as a layered graph.
struct graph_input {
    attnlab::trace_info info;
    attnlab::layered_graph g;
    int tok = 0;
};

graph_input graph_load(const graph_args & a) {
    using namespace attnlab;
    if (a.max_tokens < 1 || a.max_tokens > k_graph_max_tokens) {
        throw input_error("--max-tokens", "max_tokens", "must be in 1.." + std::to_string(k_graph_max_tokens));
    }
    if (!(a.residual >= 0.0 && a.residual <= 1.0)) throw input_error("--residual", "residual", "must be in [0, 1]");
    graph_input in;
    in.info = trace_read_info(a.trace);
    std::vector<int> want;
    int lo = 0, hi = 1 << 30;
    if (!a.layer_range.empty()) parse_range(a.layer_range, &lo, &hi);
    for (int l : in.info.layers)
        if (l >= lo && l <= hi) want.push_back(l);
    if (want.empty()) throw input_error(a.trace, "layer_range", "no captured layer in " + a.layer_range);
    const qkv_capture cap = trace_read(a.trace, want);
    in.g = run_job(a.quiet || a.json, [&](job_progress * job) { return attention_graph_from_capture(cap, lo, hi, a.max_tokens, job); });
    const int n = in.g.n_tokens;
    in.tok = a.token < 0 ? n - 1 : a.token;
    if (in.tok >= n) {
        throw input_error("--token", "token", std::to_string(in.tok) + " is outside 0.." + std::to_string(n - 1) + " (see --max-tokens)");
    }
    return in;
}

// Layers each token needs to reach the output token under each sparse pattern.
json pattern_reach(const std::vector<std::string> & patterns, int n, int tok) {
    using namespace attnlab;
    std::vector<std::string> specs = patterns;
    if (specs.empty()) specs = {"window:w=4", "strided:m=8,w=4", "bigbird:w=4,g=2,r=2"};
    json pats = json::array();
    for (const std::string & s : specs) {
        sparse_pattern p = sparse_pattern_parse(s);
        std::vector<int> r = reach_layers_to(p, n, tok);
        r.resize(tok + 1);
        int mx = 0;
        bool all = true;
        for (int x : r) {
            if (x < 0) all = false;
            mx = std::max(mx, x);
        }
        pats.push_back({{"spec", p.spec()}, {"layers_to_token", r}, {"max_layers", all ? json(mx) : json(nullptr)},
                        {"from_token0", r[0]}});
    }
    return pats;
}

json poincare_json(const attnlab::layered_graph & g, const graph_args & a) {
    using namespace attnlab;
    const int n = g.n_tokens;
    std::vector<double> R = attention_rollout(g, a.residual);
    std::vector<double> D = graph_distances(R, n, 1e-3);
    poincare_options po;
    const poincare_result pr = run_job(a.quiet || a.json, [&](job_progress * job) { return poincare_embed(D, n, po, job); });
    return {{"model", "Poincaré disk, curvature -1"}, {"distance", "shortest path over -log(rollout weight)"},
            {"xy", pr.xy}, {"mean_distortion", pr.mean_distortion}, {"worst_distortion", pr.worst_distortion},
            {"distortion_history", pr.distortion_history}, {"iters", pr.iters_run}};
}

void print_graph(const graph_args & a, const graph_input & in, const json & j) {
    const attnlab::layered_graph & g = in.g;
    const int tok = in.tok;
    const std::vector<std::string> strs = j["token_strings"];
    const std::vector<double> roll = j["rollout"];
    const std::vector<double> flow = j["flow"].is_null() ? std::vector<double>() : j["flow"].get<std::vector<double>>();
    const std::vector<int> capr = j["reachability"]["capture_layers_to_token"];
    std::printf("trace   %s (%s), layers %d-%d (%zu), %d tokens, output token %d\n", a.trace.c_str(), in.info.model_id.c_str(),
                g.layers.front(), g.layers.back(), g.layers.size(), g.n_tokens, tok);
    std::printf("%6s %-14s %10s %10s %8s\n", "token", "text", "rollout", "flow", "layers*");
    for (int t = 0; t <= tok; t++) {
        std::string s = t < int(strs.size()) ? strs[t] : "";
        for (char & ch : s)
            if (ch == '\n' || ch == '\t') ch = ' ';
        if (s.size() > 14) s = s.substr(0, 14);
        std::printf("%6d %-14s %10.4f %10s %8d\n", t, s.c_str(), roll[t], flow.empty() ? "-" : std::to_string(flow[t]).substr(0, 8).c_str(), capr[t]);
    }
    std::printf("* layers for each token to reach token %d through head-averaged attention >= %g (-1: not within the range)\n", tok, a.threshold);
    for (const auto & p : j["reachability"]["patterns"]) {
        std::printf("pattern %-28s layers for token 0 to reach %d: %s, most over all tokens: %s\n", p["spec"].get<std::string>().c_str(),
                    tok, p["from_token0"].dump().c_str(), p["max_layers"].dump().c_str());
    }
    if (a.embed) {
        std::printf("embedding: Poincaré disk, mean distortion %.4f, worst-case %.3g\n", j["embedding"]["mean_distortion"].get<double>(),
                    j["embedding"]["worst_distortion"].get<double>());
    }
}

int run_graph(const graph_args & a) {
    using namespace attnlab;
    const graph_input in = graph_load(a);
    const layered_graph & g = in.g;
    const int n = g.n_tokens, tok = in.tok;
    json j;
    j["trace"] = a.trace;
    j["model_id"] = in.info.model_id;
    j["layers"] = g.layers;
    j["tokens"] = n;
    j["token"] = tok;
    j["residual"] = a.residual;
    const std::vector<std::string> & ts = in.info.token_strings;
    j["token_strings"] = std::vector<std::string>(ts.begin(), ts.begin() + std::min<size_t>(n, ts.size()));
    std::vector<double> roll = attention_rollout_row(g, tok, a.residual);
    roll.resize(tok + 1);
    j["rollout"] = roll;
    j["flow_limit"] = {{"nodes", k_flow_max_nodes}, {"edges", k_flow_max_edges}};
    j["flow"] = nullptr;
    if (!a.no_flow) {
        std::vector<double> flow = run_job(a.quiet || a.json, [&](job_progress * job) { return attention_flow(g, tok, a.residual, job); });
        flow.resize(tok + 1);
        j["flow"] = flow;
    }
    std::vector<int> capr = reach_layers_to_layered(g, tok, a.threshold);
    capr.resize(tok + 1);
    j["reachability"] = {{"patterns", pattern_reach(a.patterns, n, tok)}, {"capture_threshold", a.threshold},
                         {"capture_layers_to_token", capr}};
    if (a.embed) j["embedding"] = poincare_json(g, a);
    if (a.json) print_json(j);
    else print_graph(a, in, j);
    return 0;
}

} // namespace

void add_cmd_graph(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<graph_args>();
    CLI::App * sub = app.add_subcommand("graph", "Information flow of a trace: rollout, attention flow, reachability");
    sub->add_option("--trace", a->trace, "trace file (attnlab-cli capture or tools/export_trace.py)")->required();
    sub->add_option("--layer-range", a->layer_range, "captured layers a-b (default: all)");
    sub->add_option("--token", a->token, "output token (default: the last of the prefix)");
    sub->add_option("--max-tokens", a->max_tokens, "analyse the first N tokens (a causal prefix is exact)")->capture_default_str();
    sub->add_option("--residual", a->residual, "residual share in rollout and flow (0.5 in Abnar & Zuidema)")->capture_default_str();
    sub->add_option("--threshold", a->threshold, "edge threshold on head-averaged attention for the capture's reachability")->capture_default_str();
    sub->add_option("--pattern", a->patterns, "sparse pattern(s): window:w=4, strided:m=8,w=4, bigbird:w=4,g=2,r=2 (default: those three)");
    sub->add_flag("--no-flow", a->no_flow, "skip attention flow");
    sub->add_flag("--embed", a->embed, "Poincaré embedding of the tokens (distances from the rollout)");
    a->add_output_flags(sub);
    command_add(cmds, sub, *a, [a]() { return run_graph(*a); });
}

} // namespace attnlab_cli
