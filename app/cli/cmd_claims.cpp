// attnlab-cli claims: every seed claim of METHODS.md beside what the model at
// hand measures (evaluation text only), marking what cannot be measured here.
// The driver is lab/claims_measure.h, the one the claims scenario kind runs.
#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>

#include "cli_common.h"
#include "attention/selection.h"
#include "base/error.h"
#include "lab/claims_measure.h"

namespace attnlab_cli {

namespace {
struct claims_args : common_opts {
    std::string grid, ppl_rhos = "0.15,0.2,0.25,0.4";
    std::vector<std::string> trained;
    int windows = 2, block = 64;
};

std::vector<double> parse_reals(const std::string & s, const char * field) {
    std::vector<double> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        char * end = nullptr;
        const double v = std::strtod(item.c_str(), &end);
        if (item.empty() || *end || !(v > 0 && v <= 1)) {
            throw attnlab::input_error("--" + std::string(field), field, "'" + item + "' is not a density in (0, 1]");
        }
        out.push_back(v);
    }
    if (out.empty()) throw attnlab::input_error("--" + std::string(field), field, "empty list");
    return out;
}

// Wraps text at `w` columns, continuation lines indented by `ind`.
void print_wrapped(const std::string & label, const std::string & text, size_t w = 110) {
    const std::string ind(label.size(), ' ');
    std::string line = label;
    std::stringstream ss(text);
    std::string word;
    bool first = true;
    while (ss >> word) {
        if (!first && line.size() + 1 + word.size() > w) {
            std::printf("%s\n", line.c_str());
            line = ind;
            first = true;
        }
        line += (first ? "" : " ") + word;
        first = false;
    }
    std::printf("%s\n", line.c_str());
}

void print_report(const attnlab::claims_report & rep) {
    for (const auto & r : rep.rows) {
        std::printf("[%s] %s\n", r.seed.c_str(), r.claim.c_str());
        print_wrapped("      measured: ", r.measured.empty() ? "-" : r.measured);
        print_wrapped("      status:   ", r.status + (r.how.empty() ? "" : " -- " + r.how));
        std::printf("\n");
    }
    std::printf("Exact arithmetic (sim/claims):\n");
    for (const auto & e : rep.exact) {
        std::printf("[%s] %s\n      %s: claimed %.4g %s, %s %.4g %s -> %s\n", e.seed.c_str(), e.claim.c_str(), e.quantity.c_str(), e.claimed,
                    e.unit.c_str(), e.kind.c_str(), e.exact, e.unit.c_str(), e.verdict.c_str());
    }
    if (!rep.data["notes"].empty()) {
        std::printf("\nNotes:\n");
        for (const auto & n : rep.data["notes"]) std::printf("  %s\n", n.get<std::string>().c_str());
    }
}

int run_claims(const claims_args & a) {
    using namespace attnlab;
    claims_measure_options opt;
    opt.text = a.text;
    opt.ctx = a.ctx;
    opt.windows = a.windows;
    opt.block = a.block;
    if (!block_size_valid(a.block)) throw input_error("--block", "block", "not one of 16, 32, 64, 128");
    if (!a.grid.empty()) opt.rho_grid = parse_reals(a.grid, "grid");
    opt.ppl_rhos = parse_reals(a.ppl_rhos, "ppl-densities");
    opt.trained_specs = a.trained;
    const auto t0 = std::chrono::steady_clock::now();
    const cli_model cm = cli_model_load(a.model, a.quiet);
    const claims_report rep = run_job(a.quiet, [&](job_progress * job) {
        opt.progress = job;
        return claims_measure(cm.m, cm.tok, opt);
    });
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (a.json) {
        nlohmann::json j = claims_report_json(rep);
        j["model"] = a.model;
        j["wall_seconds"] = wall;
        print_json(j);
        return 0;
    }
    std::printf("Seed claims vs measured on %s (%s, %s, ctx %d); %.0f s\n\n", cm.m.model_id.c_str(), a.model.c_str(), a.text.c_str(), a.ctx,
                wall);
    print_report(rep);
    return 0;
}
} // namespace

void add_cmd_claims(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<claims_args>();
    a->text = "kjv:eval";
    a->ctx = 1024;
    CLI::App * sub = app.add_subcommand("claims", "Seed claims vs what this model measures (recall, density, overhead, "
                                                  "perplexity change, layer profile); marks what is not measurable here");
    a->add_model(sub);
    a->add_text(sub, "evaluation text (kjv:eval)");
    a->add_ctx(sub, "context length of the capture and of each perplexity window");
    sub->add_option("--windows", a->windows, "perplexity windows of ctx tokens")->capture_default_str();
    sub->add_option("--block", a->block, "block size of block_topk")->capture_default_str();
    sub->add_option("--grid", a->grid, "densities of the recall curve (default 0.05,0.1,...,1)");
    sub->add_option("--ppl-densities", a->ppl_rhos, "block_topk densities run end to end")->capture_default_str();
    sub->add_option("--trained", a->trained, "SPEC of a trained/composed method to measure (repeatable), e.g. learned_gate:params=g.bin");
    a->add_json(sub);
    a->add_quiet(sub);
    command_add(cmds, sub, *a, [a]() { return run_claims(*a); });
}

} // namespace attnlab_cli
