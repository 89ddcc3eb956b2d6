// layer_adaptive: per-head block_topk budgets from calibrated recall curves
// (see layer_adaptive.h).
#include "methods/layer_adaptive.h"
#include "base/atomic_write.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_read.h"
#include "base/job.h"
#include "methods/train/calib.h"
#include "methods/train/st_meta.h"

namespace attnlab {

namespace {

using st_meta::real_str;

head_allocation summarize(head_allocation a) {
    const size_t n = a.rho.size();
    a.mean_density = a.mean_recall = 0.0;
    for (size_t h = 0; h < n; ++h) {
        a.mean_density += a.density[h] / n;
        a.mean_recall += a.recall[h] / n;
    }
    return a;
}

// The allocation of given per-head rho values, read off the curves.
head_allocation allocation_of(const recall_curves & c, const std::vector<double> & rho) {
    head_allocation a;
    a.rho = rho;
    for (size_t h = 0; h < c.heads.size(); ++h) {
        a.density.push_back(curve_at(c.grid, c.heads[h].density, rho[h]));
        a.recall.push_back(curve_at(c.grid, c.heads[h].recall, rho[h]));
    }
    return summarize(a);
}

std::vector<double> seed_rho(const recall_curves & c, double factor) {
    std::vector<double> r;
    const int nl = std::max(1, c.n_layer - 1);
    for (const auto & hc : c.heads) {
        const double x = 0.45 - (0.45 - 0.125) * std::min(1.0, (double) hc.layer / nl);
        r.push_back(std::min(c.grid.back(), std::max(c.grid.front(), x * factor)));
    }
    return r;
}

} // namespace

double curve_at(const std::vector<double> & grid, const std::vector<double> & y, double r) {
    if (grid.empty()) return 0.0;
    if (r <= grid.front()) return y.front();
    if (r >= grid.back()) return y.back();
    const size_t k = std::upper_bound(grid.begin(), grid.end(), r) - grid.begin();
    const double t = (r - grid[k - 1]) / (grid[k] - grid[k - 1]);
    return y[k - 1] + t * (y[k] - y[k - 1]);
}

recall_curves layer_adaptive_calibrate(const std::vector<const qkv_capture *> & calib, std::vector<double> grid, int block,
                                       job_progress * progress) {
    const trace_info & info = check_calibration_set(calib, "layer_adaptive calibration");
    if (!block_size_valid(block)) throw input_error("layer_adaptive calibration", "block", "not one of 16, 32, 64, 128");
    std::sort(grid.begin(), grid.end());
    grid.erase(std::unique(grid.begin(), grid.end()), grid.end());
    if (grid.empty() || !(grid.front() > 0.0) || grid.back() > 1.0) {
        throw input_error("layer_adaptive calibration", "grid", "densities must lie in (0, 1]");
    }
    recall_curves c;
    c.block = block;
    c.n_layer = info.n_layer;
    c.n_head = info.n_head;
    c.layers = info.layers;
    c.grid = grid;
    c.prov = calib_provenance(info, "layer_adaptive");
    std::vector<std::unique_ptr<sparse_method>> methods;
    for (double r : grid) methods.push_back(block_topk_create(r, block));

    const int n_jobs = (int) info.layers.size() * info.n_head, G = (int) grid.size();
    c.heads.resize(n_jobs);
    std::atomic<int> done{0};
    job_step(progress, 0.0, "recall curves");
#pragma omp parallel for schedule(dynamic, 1)
    for (int job = 0; job < n_jobs; ++job) {
        if (progress && progress->cancelled()) continue;
        const int li = job / info.n_head, h = job % info.n_head;
        head_curve & hc = c.heads[job];
        hc.layer = info.layers[li];
        hc.head = h;
        hc.density.assign(G, 0.0);
        hc.recall.assign(G, 0.0);
        for (const qkv_capture * cap : calib) {
            const head_inputs in = capture_head_of(*cap, li, h).in;
            const int L = in.n_tokens, nb = (L + block - 1) / block;
            // Per row the dense mass of each key block: recall of any block
            // mask is then a sum over its kept blocks.
            const std::vector<double> A = dense_softmax_rows(in);
            std::vector<double> R((size_t) L * nb, 0.0);
            for (int i = 0; i < L; ++i)
                for (int j = 0; j <= (in.causal ? i : L - 1); ++j) R[(size_t) i * nb + j / block] += A[(size_t) i * L + j];
            for (int g = 0; g < G; ++g) {
                const selection s = methods[g]->select(in);
                double rec = 0.0;
                for (int i = 0; i < L; ++i) {
                    const int I = i / block;
                    for (int32_t t = s.blk_ptr[I]; t < s.blk_ptr[I + 1]; ++t) rec += R[(size_t) i * nb + s.blk_cols[t]];
                }
                hc.recall[g] += rec / L / calib.size();
                hc.density[g] += selection_block_density(s) / calib.size();
            }
        }
        const int n = ++done;
        if (progress) progress->report((double) n / n_jobs, "recall curve layer " + std::to_string(hc.layer));
    }
    if (progress && progress->cancelled()) throw job_cancelled();
    return c;
}

head_allocation allocate_greedy(const recall_curves & c, double budget) {
    const int H = (int) c.heads.size(), G = (int) c.grid.size();
    std::vector<int> k(H, 0);
    double used = 0.0;
    for (int h = 0; h < H; ++h) used += c.heads[h].density[0];
    const double cap = budget * H + 1e-12;
    while (true) {
        int bh = -1, bk = -1;
        double best = 0.0;
        for (int h = 0; h < H; ++h) {
            const head_curve & hc = c.heads[h];
            for (int k2 = k[h] + 1; k2 < G; ++k2) {
                const double dc = hc.density[k2] - hc.density[k[h]];
                const double dr = hc.recall[k2] - hc.recall[k[h]];
                if (dr <= 0.0 || used + dc > cap) continue;
                // A free gain (no added density) beats any priced one.
                const double ratio = dc <= 0.0 ? HUGE_VAL : dr / dc;
                if (ratio > best) {
                    best = ratio;
                    bh = h;
                    bk = k2;
                }
            }
        }
        if (bh < 0) break;
        used += c.heads[bh].density[bk] - c.heads[bh].density[k[bh]];
        k[bh] = bk;
    }
    head_allocation a;
    for (int h = 0; h < H; ++h) {
        a.rho.push_back(c.grid[k[h]]);
        a.density.push_back(c.heads[h].density[k[h]]);
        a.recall.push_back(c.heads[h].recall[k[h]]);
    }
    return summarize(a);
}

head_allocation allocate_uniform(const recall_curves & c, double budget) {
    // One rho for every head, the largest whose mean realised density fits
    // the budget (block_topk's forced blocks make density exceed rho).
    const size_t H = c.heads.size();
    double lo = c.grid.front(), hi = c.grid.back();
    if (allocation_of(c, std::vector<double>(H, lo)).mean_density > budget) return allocation_of(c, std::vector<double>(H, lo));
    for (int it = 0; it < 60; ++it) {
        const double mid = 0.5 * (lo + hi);
        (allocation_of(c, std::vector<double>(H, mid)).mean_density > budget ? hi : lo) = mid;
    }
    return allocation_of(c, std::vector<double>(H, lo));
}

head_allocation allocate_seed_schedule(const recall_curves & c, double budget, bool scale_to_budget) {
    if (!scale_to_budget) return allocation_of(c, seed_rho(c, 1.0));
    // Mean density is nondecreasing in the factor: bisection.
    double lo = 0.0, hi = 1.0 / 0.125;
    for (int it = 0; it < 60; ++it) {
        const double mid = 0.5 * (lo + hi);
        (allocation_of(c, seed_rho(c, mid)).mean_density > budget ? hi : lo) = mid;
    }
    return allocation_of(c, seed_rho(c, lo));
}

layer_adaptive_table layer_adaptive_build(const recall_curves & c, double budget) {
    layer_adaptive_table t;
    t.rho = budget;
    t.block = c.block;
    t.n_head = c.n_head;
    t.layers = c.layers;
    t.curves = c;
    t.prov = c.prov;
    t.greedy = allocate_greedy(c, budget);
    t.uniform = allocate_uniform(c, budget);
    t.seed = allocate_seed_schedule(c, budget, false);
    t.seed_scaled = allocate_seed_schedule(c, budget, true);
    t.head_rho = t.greedy.rho;
    return t;
}

double layer_adaptive_table::rho_of(int layer, int head) const {
    for (size_t li = 0; li < layers.size(); ++li) {
        if (layers[li] == layer && head >= 0 && head < n_head) return head_rho[li * n_head + head];
    }
    return rho;
}

// ---- JSON file ----

namespace {

using json = nlohmann::json;

json alloc_json(const head_allocation & a) {
    return json{{"rho", a.rho}, {"density", a.density}, {"recall", a.recall}, {"mean_density", a.mean_density},
                {"mean_recall", a.mean_recall}};
}

const json & jget(const json & j, const std::string & key, const std::string & path) {
    if (!j.is_object() || !j.contains(key)) throw input_error(path, key, "missing field");
    return j.at(key);
}

double jnum(const json & j, const std::string & key, const std::string & path, double lo, double hi) {
    const json & v = jget(j, key, path);
    if (!v.is_number()) throw input_error(path, key, "not a number");
    const double x = v.get<double>();
    if (!(x >= lo && x <= hi)) throw input_error(path, key, "value " + real_str(x) + " out of range");
    return x;
}

std::string jstr(const json & j, const std::string & key, const std::string & path) {
    const json & v = jget(j, key, path);
    if (!v.is_string()) throw input_error(path, key, "not a string");
    return v.get<std::string>();
}

std::vector<double> jvec(const json & j, const std::string & key, const std::string & path, size_t n, double lo, double hi) {
    const json & v = jget(j, key, path);
    if (!v.is_array() || v.size() != n) throw input_error(path, key, "expected an array of " + std::to_string(n) + " numbers");
    std::vector<double> r;
    for (const auto & x : v) {
        if (!x.is_number()) throw input_error(path, key, "not a number");
        const double d = x.get<double>();
        if (!(d >= lo && d <= hi)) throw input_error(path, key, "value " + real_str(d) + " out of range");
        r.push_back(d);
    }
    return r;
}

} // namespace

void layer_adaptive_save(const std::string & path, const layer_adaptive_table & t) {
    json j;
    j["attnlab.kind"] = "layer_adaptive";
    j["format_version"] = 1;
    j["rho"] = t.rho;
    j["block"] = t.block;
    j["n_layer"] = t.curves.n_layer;
    j["n_head"] = t.n_head;
    j["layers"] = t.layers;
    j["head_rho"] = t.head_rho;
    j["calib_text_spec"] = t.prov.calib_text_spec;
    j["calib_text_sha256"] = t.prov.calib_text_sha256;
    j["model_sha256"] = t.prov.model_sha256;
    j["model_id"] = t.prov.model_id;
    j["grid"] = t.curves.grid;
    json curves = json::array();
    for (const auto & hc : t.curves.heads) {
        curves.push_back({{"layer", hc.layer}, {"head", hc.head}, {"density", hc.density}, {"recall", hc.recall}});
    }
    j["curves"] = curves;
    j["greedy"] = alloc_json(t.greedy);
    j["uniform"] = alloc_json(t.uniform);
    j["seed_schedule"] = alloc_json(t.seed);
    j["seed_schedule_scaled"] = alloc_json(t.seed_scaled);
    write_file_atomic(path, j.dump(1) + "\n");
}

layer_adaptive_table layer_adaptive_load(const std::string & path) {
    const json j = json_read_file(path, "json");
    if (jstr(j, "attnlab.kind", path) != "layer_adaptive") throw input_error(path, "attnlab.kind", "expected layer_adaptive");
    if (jnum(j, "format_version", path, 1, 1) != 1) throw input_error(path, "format_version", "unsupported");
    recall_curves c;
    c.block = (int) jnum(j, "block", path, 16, 128);
    if (!block_size_valid(c.block)) throw input_error(path, "block", "not one of 16, 32, 64, 128");
    c.n_layer = (int) jnum(j, "n_layer", path, 1, 1e6);
    c.n_head = (int) jnum(j, "n_head", path, 1, 1e6);
    const json & jl = jget(j, "layers", path);
    if (!jl.is_array() || jl.empty()) throw input_error(path, "layers", "expected a non-empty array");
    for (const auto & x : jl) {
        if (!x.is_number_integer() || x.get<int>() < 0 || x.get<int>() >= c.n_layer) throw input_error(path, "layers", "bad layer index");
        c.layers.push_back(x.get<int>());
    }
    const size_t H = c.layers.size() * c.n_head;
    c.prov.kind = "layer_adaptive";
    c.prov.file = path;
    c.prov.calib_text_spec = jstr(j, "calib_text_spec", path);
    if (text_spec_part(c.prov.calib_text_spec) != text_part::calibration) {
        throw input_error(path, "calib_text_spec", "'" + c.prov.calib_text_spec + "' is not calibration text");
    }
    c.prov.calib_text_sha256 = jstr(j, "calib_text_sha256", path);
    if (c.prov.calib_text_sha256.size() != 64) throw input_error(path, "calib_text_sha256", "not a sha256 hex digest");
    c.prov.model_sha256 = jstr(j, "model_sha256", path);
    c.prov.model_id = jstr(j, "model_id", path);
    const json & jg = jget(j, "grid", path);
    if (!jg.is_array() || jg.empty()) throw input_error(path, "grid", "expected a non-empty array");
    c.grid = jvec(j, "grid", path, jg.size(), 1e-12, 1.0);
    if (!std::is_sorted(c.grid.begin(), c.grid.end())) throw input_error(path, "grid", "not ascending");
    const json & jc = jget(j, "curves", path);
    if (!jc.is_array() || jc.size() != H) throw input_error(path, "curves", "expected " + std::to_string(H) + " curves");
    for (size_t h = 0; h < H; ++h) {
        head_curve hc;
        hc.layer = c.layers[h / c.n_head];
        hc.head = (int) (h % c.n_head);
        if ((int) jnum(jc[h], "layer", path, 0, 1e6) != hc.layer || (int) jnum(jc[h], "head", path, 0, 1e6) != hc.head) {
            throw input_error(path, "curves", "curve " + std::to_string(h) + " is not layer-major");
        }
        hc.density = jvec(jc[h], "density", path, c.grid.size(), 0.0, 1.0);
        hc.recall = jvec(jc[h], "recall", path, c.grid.size(), 0.0, 1.0 + 1e-9);
        c.heads.push_back(hc);
    }
    layer_adaptive_table t = layer_adaptive_build(c, jnum(j, "rho", path, 1e-12, 1.0));
    // The file's per-head budgets are what runs (they may be hand-edited).
    t.head_rho = jvec(j, "head_rho", path, H, 1e-12, 1.0);
    return t;
}

// ---- method ----

layer_adaptive_method::layer_adaptive_method(std::shared_ptr<const layer_adaptive_table> t, std::string spec)
    : t_(std::move(t)), spec_(std::move(spec)) {
    for (double r : t_->head_rho) per_head_.push_back(block_topk_create(r, t_->block));
    fallback_ = block_topk_create(t_->rho, t_->block);
}

double layer_adaptive_method::predictor_flops(int L, int d, bool causal) const {
    return fallback_->predictor_flops(L, d, causal);   // block_topk's, whatever rho
}

selection layer_adaptive_method::select(const head_inputs & in) const {
    for (size_t li = 0; li < t_->layers.size(); ++li) {
        if (t_->layers[li] == in.layer && in.head >= 0 && in.head < t_->n_head) {
            return per_head_[li * t_->n_head + in.head]->select(in);
        }
    }
    return fallback_->select(in);
}

namespace {

std::unique_ptr<sparse_method> create(const method_args & a) {
    const std::string & file = a.text("table");
    if (file.empty()) throw input_error(a.spec_text, "table", "layer_adaptive needs a table file (table=FILE)");
    auto t = std::make_shared<layer_adaptive_table>(layer_adaptive_load(file));
    if (std::fabs(t->rho - a.real("rho")) > 1e-9) {
        throw input_error(a.spec_text, "rho", "the table " + file + " allots the budget rho=" + real_str(t->rho));
    }
    if (t->block != a.integer("B")) {
        throw input_error(a.spec_text, "B", "the table " + file + " was calibrated with B=" + std::to_string(t->block));
    }
    return std::make_unique<layer_adaptive_method>(t, method_args_spec("layer_adaptive", a));
}

const method_registrar reg([] {
    method_info e;
    e.name = "layer_adaptive";
    e.help = "per-(layer, head) block_topk budgets from calibrated recall curves (greedy)";
    e.params = {param_real("rho", "0.2", 0.0, 1.0, true, "global budget: mean block density over heads"),
                param_text("table", "", "allocation table (JSON)"), param_block()};
    e.create = create;
    e.uses_qk = true;
    e.file_keys = {"table"};
    e.budget_from_file = true;
    e.order = 140;
    return e;
}());

} // namespace

} // namespace attnlab
