// The passkey grid (see passkey_grid.h).
#include "lab/passkey_grid.h"

#include <cstdio>

#include "base/job.h"

namespace attnlab {

std::vector<passkey_trial> passkey_grid_run(const llama_model & m, const bpe_tokenizer & tok, const std::string & filler,
                                            const passkey_grid_options & opt, attention_hook * hook, job_progress * progress) {
    std::vector<passkey_trial> out;
    const size_t total = opt.ctxs.size() * opt.depths.size() * size_t(opt.trials);
    for (int ctx : opt.ctxs) {
        for (double d : opt.depths) {
            for (int k = 0; k < opt.trials; ++k) {
                char stage[96];
                std::snprintf(stage, sizeof stage, "ctx %d depth %g", ctx, d);
                const double f = total ? double(out.size()) / double(total) : 0.0;
                job_step(progress, opt.progress_lo + (opt.progress_hi - opt.progress_lo) * f,
                         (opt.label.empty() ? "" : opt.label + " ") + stage);
                passkey_options o;
                o.ctx = ctx;
                o.depth = d;
                o.seed = opt.seed + uint64_t(k);
                o.gpu = opt.gpu;
                o.method = opt.method;
                out.push_back(passkey_run(m, tok, filler, o, opt.gpu ? nullptr : hook));
            }
        }
    }
    return out;
}

nlohmann::json passkey_trial_json(const passkey_trial & r) {
    return {{"ctx", r.ctx},
            {"depth", r.depth},
            {"seed", r.seed},
            {"key", r.key},
            {"needle_position", r.needle_position},
            {"digits_correct", r.digits_correct},
            {"n_digits", r.n_digits},
            {"retrieved", r.retrieved}};
}

std::vector<double> passkey_accuracy_by_depth(const std::vector<passkey_trial> & trials, const std::vector<double> & depths) {
    std::vector<double> acc;
    for (double d : depths) {
        int n = 0, ok = 0;
        for (const auto & t : trials) {
            if (t.depth != d) continue;
            n++;
            ok += t.retrieved;
        }
        acc.push_back(n ? double(ok) / n : 0.0);
    }
    return acc;
}

} // namespace attnlab
