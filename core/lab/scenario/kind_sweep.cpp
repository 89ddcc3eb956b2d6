// Scenario kind `sweep`: the trade-off table of lab/sweep.h (plan, execute,
// model runner) with its figures (lab/figures.h) and the Pareto front.
#include "base/error.h"
#include "lab/figures.h"
#include "lab/scenario/common.h"
#include "methods/method.h"
#include "model/llama_gpu_api.h"

namespace attnlab {

using nlohmann::json;

namespace {

void check(const std::string & file, const std::string & pre, const json & c) {
    check_method_specs(file, pre, c);
    try {
        score_create(c["score"].get<std::string>());
    } catch (const input_error & e) {
        throw input_error(file, pre + "score", e.what());
    }
}

// Pareto front of perplexity change vs block density, per ctx.
json pareto_by_ctx(const std::vector<sweep_row> & rows, const std::vector<int> & ctxs) {
    json front = json::array();
    for (int ctx : ctxs) {
        std::vector<double> x, y;
        std::vector<std::string> name;
        for (const auto & r : rows) {
            if (r.ctx != ctx) continue;
            x.push_back(r.block_density);
            y.push_back(r.delta_ppl_rel);
            name.push_back(r.method);
        }
        for (int i : pareto_front(x, y)) front.push_back({{"ctx", ctx}, {"method", name[size_t(i)]}});
    }
    return front;
}

void report(scenario_out & R, const model_ctx & mc, const text_source & src, const std::vector<sweep_row> & rows, const json & front) {
    R.md << "## Results\n\nEvery method patched into every layer of " << mc.m.model_id << ", on " << src.spec << " ("
         << (rows.empty() ? 0 : rows[0].tokens) << " tokens, windows of ctx). Δppl is relative to dense on the same windows; "
         << "mass recall is the mean per-head share of dense softmax mass the selection keeps (first window).\n\n";
    md_rows_table(R.md, rows, R.dir);
    R.md << "Pareto front (lowest Δppl for its block density): ";
    for (size_t i = 0; i < front.size(); ++i) R.md << (i ? ", " : "") << "`" << front[i]["method"].get<std::string>() << "` (ctx " << front[i]["ctx"] << ")";
    R.md << "\n\n";
    if (R.figures && !rows.empty()) {
        make_dirs(R.dir + "/figures");
        for (const auto & f : sweep_write_figures(R.dir + "/figures", rows)) {
            const std::string base = f.substr(f.find_last_of('/') + 1);
            R.figure_files.push_back("figures/" + base);
            R.figure_link(base, "figures/" + base);
        }
    }
}

void run(const scenario & s, scenario_out & R, job_progress * progress) {
    const json & c = s.cfg;
    const std::vector<int> ctxs = c["ctx"].get<std::vector<int>>();
    model_ctx mc;
    const text_source src = open_eval_and_model(s, "the scenario's metrics", ctxs, mc, R, progress);
    const int64_t max_tokens = c["max_tokens"].get<int64_t>();
    const std::string score = c["score"].get<std::string>();
    std::vector<sweep_task> tasks = sweep_plan(c["methods"].get<std::vector<std::string>>(), c["densities"].get<std::vector<double>>(),
                                               ctxs, src.sha256, mc.m.source_sha256, max_tokens, score, s.device);
    if (s.shard_count > 1) {
        tasks = sweep_shard(tasks, s.shard_index, s.shard_count);
        R.metrics["shard"] = {{"index", s.shard_index}, {"count", s.shard_count}};
    }
    for (const auto & t : tasks) R.methods.push_back(t.method);
    sweep_model_options opt;
    opt.passkey_depths = c["passkey_depths"].get<std::vector<double>>();
    opt.passkey_trials = c["passkey_trials"].get<int>();
    opt.mass_recall = c["mass_recall"].get<bool>();
    opt.score_spec = score;
    std::unique_ptr<llama_gpu> gpu;
    if (s.device == "cuda") {   // every forward pass on the GPU (the sweep runner says how)
        gpu = llama_gpu::create(mc.m);
        opt.gpu = gpu.get();
        R.inputs["device"]["name"] = gpu->device_name();
    }
    // the sweep runner seeds passkey trial k with 1 + k (the scenario's "seed" does not reach it)
    if (!opt.passkey_depths.empty()) R.seeds["passkey_seeds"] = {{"first", 1}, {"count", opt.passkey_trials}};
    auto runner = std::make_shared<sweep_model_runner>(mc.m, mc.tok.get(), src, first_tokens(*mc.tok, src.text, max_tokens), opt);
    const auto t0 = scenario_clock::now();
    sweep_outcome res = sweep_execute(tasks, R.dir, [runner](const sweep_task & t, job_progress * p) { return (*runner)(t, p); }, progress);
    R.timings["rows_s"] = secs_since(t0);
    R.metrics["rows"] = add_rows(R, res.rows);
    const json front = pareto_by_ctx(res.rows, ctxs);
    R.metrics["pareto_front"] = front;
    report(R, mc, src, res.rows, front);
}

} // namespace

scenario_kind scenario_kind_sweep() {
    const std::vector<scenario_key> own = {key_non_empty(key_of("ctx", key_type::int_list, {2048}, 2, k_scenario_max_ctx)),
                                           key_non_empty(key_of("methods", key_type::str_list, nullptr)),
                                           key_densities({0.1, 0.2, 0.4, 0.6}),
                                           key_of("max_tokens", key_type::integer, 4096, 0, 1e9),
                                           key_of("passkey_depths", key_type::real_list, json::array(), 0, 1),
                                           key_of("passkey_trials", key_type::integer, 1, 1, 100),
                                           key_of("mass_recall", key_type::boolean, true),
                                           key_of("score", key_type::str, "softmax")};
    // sweep_execute writes results.csv row by row, and a sweep splits into shards
    return {"sweep", model_kind_keys(own), {"tradeoffs", "layers_heads"}, run, check,
            /*needs_model*/ true, /*shards*/ true, /*writes_own_csv*/ true, /*gpu*/ true};
}

} // namespace attnlab
