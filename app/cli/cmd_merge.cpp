// attnlab-cli merge: the row files of sweep shards (`sweep --shard I/N`, one
// directory each, perhaps from different machines) into one sweep directory,
// with the figures. A later `sweep --out DIR` with the full plan finds every
// merged row done.
#include <chrono>
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "base/error.h"
#include "lab/figures.h"
#include "lab/sweep.h"

namespace attnlab_cli {

namespace {
struct merge_args : common_opts {
    std::string out;
    std::vector<std::string> shards;
    bool no_figures = false;
};
} // namespace

void add_cmd_merge(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<merge_args>();
    CLI::App * sub = app.add_subcommand("merge", "Merge sweep shard directories (sweep --shard I/N) into one: rows checked "
                                                 "for conflicts, exact duplicates dropped, figures drawn");
    sub->add_option("--out,-o", a->out, "output sweep directory (rows it already has are kept)")->required();
    sub->add_option("shards", a->shards, "shard directories, each with a results.jsonl")->required();
    sub->add_flag("--no-figures", a->no_figures, "do not draw the PNG figures");
    a->add_json(sub);
    command_add(cmds, sub, *a, [a]() {
        using namespace attnlab;
        const auto t0 = std::chrono::steady_clock::now();
        const sweep_merge_result res = sweep_merge(a->shards, a->out);
        std::vector<std::string> figs;
        if (!a->no_figures) figs = sweep_write_figures(a->out, res.rows);
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        nlohmann::json j;
        j["out"] = a->out;
        j["rows"] = res.rows.size();
        j["duplicates_dropped"] = res.duplicates;
        j["inputs"] = nlohmann::json::array();
        for (size_t i = 0; i < res.inputs.size(); ++i) {
            j["inputs"].push_back({{"file", res.inputs[i]}, {"rows", res.input_rows[i]}});
        }
        j["model_sha256"] = res.rows.empty() ? "" : res.rows.front().model_sha256;
        j["text_sha256"] = res.rows.empty() ? "" : res.rows.front().text_sha256;
        j["figures"] = figs;
        j["wall_seconds"] = wall;
        if (a->json) {
            print_json(j);
            return 0;
        }
        for (size_t i = 0; i < res.inputs.size(); ++i) std::printf("read %4d rows  %s\n", res.input_rows[i], res.inputs[i].c_str());
        std::printf("wrote %d rows to %s/results.jsonl and results.csv (%d exact duplicates dropped), %.2f s\n",
                    int(res.rows.size()), a->out.c_str(), res.duplicates, wall);
        for (const auto & f : figs) std::printf("figure %s\n", f.c_str());
        return 0;
    });
}

} // namespace attnlab_cli
