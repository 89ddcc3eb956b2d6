// attnlab-cli run: one scenario file (docs/scenarios.md) run headless into a
// snapshot directory: report.md with PNG figures, results.csv/json,
// report.json and manifest.json. Written atomically: an interrupted run (an
// error, Ctrl-C) leaves no output directory behind.
#include <chrono>
#include <cstdio>
#include <memory>

#include "../view_ids.h"
#include "cli_common.h"
#include "base/error.h"
#include "lab/scenario.h"
#include "lab/sweep.h"
#include "model/llama_gpu_api.h"

namespace attnlab_cli {

namespace {
struct run_args : common_opts {
    std::string file, out, shard;
    bool small = false, force = false;
};

int run_scenario(const run_args & a) {
    using namespace attnlab;
    const auto t0 = std::chrono::steady_clock::now();
    // the views a scenario may name are the app's (app/view_ids.h)
    scenario s = scenario_load(a.file, a.small, attnlab_app::view_ids());
    if (!a.shard.empty()) {
        const sweep_shard_spec sh = sweep_shard_parse(a.shard);
        s.shard_index = sh.index;
        s.shard_count = sh.count;
    }
    s.device = a.device;
    if (a.device == "cuda") {
        const std::string why = llama_gpu::unavailable_reason();
        if (!why.empty()) throw input_error("--device", "device", "cuda: " + why);
    }
    nlohmann::json man = run_job(a.quiet, [&](job_progress * job) { return scenario_run_snapshot(s, a.out, a.force, job); });
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (a.json) {
        man["out"] = a.out;
        print_json(man);
        return 0;
    }
    std::printf("%s (%s%s) -> %s in %.1f s\n", s.title.c_str(), s.kind.c_str(), s.small ? ", small" : "", a.out.c_str(), wall);
    std::printf("report   %s/report.md\n", a.out.c_str());
    if (man.contains("files")) {
        for (const auto & f : man["files"]) {
            const std::string p = f["path"].get<std::string>();
            if (p.size() > 4 && p.compare(p.size() - 4, 4, ".png") == 0) std::printf("figure   %s/%s\n", a.out.c_str(), p.c_str());
        }
    }
    return 0;
}

} // namespace

void add_cmd_run(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<run_args>();
    CLI::App * sub = app.add_subcommand("run", "Run a scenario file headless into a snapshot directory (report.md with figures, "
                                               "results.csv/json, manifest.json)");
    sub->add_option("scenario", a->file, "scenario JSON file (scenarios/*.json; schema in docs/scenarios.md)")->required();
    sub->add_option("--out,-o", a->out, "output directory (a snapshot; written atomically)")->required();
    sub->add_flag("--small", a->small, "apply the scenario's \"small\" overrides (the CI size)");
    sub->add_option("--shard", a->shard, "run only shard i of n (sweep scenarios; merge with attnlab-cli merge)");
    sub->add_flag("--force", a->force, "replace an existing snapshot in --out");
    a->add_device(sub, "cpu (default) or cuda: sweep scenarios run every forward pass on the GPU (rows record the "
                       "device and its memory); other kinds refuse cuda");
    a->add_json(sub, "JSON output (the manifest)");
    a->add_quiet(sub);
    command_add(cmds, sub, *a, [a]() { return run_scenario(*a); });
}

} // namespace attnlab_cli
