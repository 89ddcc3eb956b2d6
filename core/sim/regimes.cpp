#include "sim/regimes.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_read.h"

namespace attnlab {

using nlohmann::json;

regime_table regime_table_parse(const std::string & text, const std::string & file) {
    const json j = json_parse(file, "json", text);
    if (!j.is_object() || j.value("kind", "") != "regimes") throw input_error(file, "kind", "expected an object with \"kind\": \"regimes\"");
    regime_table t;
    t.file = file;
    t.name = j.value("name", "");
    t.source = j.value("source", "");
    if (!j.contains("methods") || !j["methods"].is_array() || j["methods"].empty()) {
        throw input_error(file, "methods", "missing or empty: a list of {name, method}");
    }
    int idx = 0;
    for (const json & x : j["methods"]) {
        const std::string at = "methods[" + std::to_string(idx++) + "]";
        if (!x.is_object() || !x.contains("name") || !x["name"].is_string() || !x.contains("method") || !x["method"].is_string()) {
            throw input_error(file, at, "needs \"name\" and \"method\" strings");
        }
        regime_method m;
        m.name = x["name"].get<std::string>();
        try {
            m.method = sim_method_parse(x["method"].get<std::string>());
        } catch (const input_error & e) {
            throw input_error(file, at + ".method", e.what());
        }
        m.method.name = m.name;
        if (x.contains("family")) {
            const std::string f = x.value("family", "");
            if (f != "dense" && f != "window" && f != "block_sparse" && f != "learned") {
                throw input_error(file, at + ".family", "\"" + f + "\" is not one of dense, window, block_sparse, learned");
            }
            m.method.family = f;
        }
        m.source = x.value("source", "");
        if (x.contains("min_density_by_ctx")) {
            const json & a = x["min_density_by_ctx"];
            if (!a.is_array() || a.empty()) throw input_error(file, at + ".min_density_by_ctx", "must be a non-empty array of [ctx, density]");
            for (const json & p : a) {
                if (!p.is_array() || p.size() != 2 || !p[0].is_number() || !p[1].is_number()) {
                    throw input_error(file, at + ".min_density_by_ctx", "entries must be [ctx, density]");
                }
                const double c = p[0].get<double>(), d = p[1].get<double>();
                if (!(c >= 1.0) || !(d > 0.0 && d <= 1.0)) throw input_error(file, at + ".min_density_by_ctx", "ctx >= 1 and density in (0, 1]");
                if (!m.min_density_by_ctx.empty() && c <= m.min_density_by_ctx.back().first) {
                    throw input_error(file, at + ".min_density_by_ctx", "ctx must increase");
                }
                m.min_density_by_ctx.push_back({c, d});
            }
            if (m.method.kind == sim_method_kind::dense) throw input_error(file, at + ".min_density_by_ctx", "dense has density 1");
        }
        t.methods.push_back(m);
    }
    return t;
}

regime_table regime_table_load(const std::string & name_or_path, const std::string & dir) {
    std::string path = name_or_path;
    if (path.find('/') == std::string::npos && !(path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0)) {
        path = (dir.empty() ? preset_dir() : dir) + "/regimes/" + name_or_path + ".json";
    }
    return regime_table_parse(sim_read_text(path), path);
}

std::string seed_rule_family(int64_t ctx) {
    if (ctx < 8192) return "dense";
    if (ctx <= 32768) return "window";
    if (ctx <= 131072) return "block_sparse";
    return "learned";
}

std::vector<int64_t> regime_default_contexts() {
    std::vector<int64_t> v;
    for (int64_t c = 1024; c <= (int64_t(1) << 20); c *= 2) v.push_back(c);
    return v;
}

double regime_density_at(const regime_method & m, int64_t ctx) {
    const auto & p = m.min_density_by_ctx;
    if (p.empty()) return m.method.kind == sim_method_kind::block_density ? m.method.density : 1.0;
    const double c = double(ctx);
    if (c <= p.front().first) return p.front().second;
    if (c >= p.back().first) return p.back().second;
    for (size_t i = 1; i < p.size(); i++) {
        if (c <= p[i].first) {
            const double t = std::log(c / p[i - 1].first) / std::log(p[i].first / p[i - 1].first);
            return p[i - 1].second + t * (p[i].second - p[i - 1].second);
        }
    }
    return p.back().second;
}

std::vector<regime_row> regimes_compute(const model_preset & model, const hw_preset & hw, const regime_table & table,
                                        const sim_options & base, const std::vector<int64_t> & contexts) {
    std::vector<regime_row> out;
    for (int64_t ctx : contexts) {
        regime_row row;
        row.ctx = ctx;
        row.seed_rule = seed_rule_family(ctx);
        sim_options o = base;
        o.ctx = ctx;
        double best = -1.0, dense_t = -1.0;
        bool best_fits = false;
        for (const regime_method & rm : table.methods) {
            sim_method m = rm.method;
            if (!rm.min_density_by_ctx.empty()) {
                const double rho = regime_density_at(rm, ctx);
                if (m.kind == sim_method_kind::window) m.window = std::max(1, int(std::ceil(rho * double(ctx) / 2.0)));
                else m.density = rho;
            }
            sim_result r = sim_run(model, hw, m, o);
            regime_cell c;
            c.name = rm.name;
            c.family = m.family;
            c.spec = sim_method_spec(m);
            c.block_density = r.plan.block_density;
            c.time_s = r.time_s;
            c.cost_per_mtok = r.cost_per_mtok;
            c.fits = r.fits;
            if (m.kind == sim_method_kind::dense) dense_t = r.time_s;
            // prefer methods that fit; among equals, the faster
            const bool better = best < 0.0 || (c.fits && !best_fits) || (c.fits == best_fits && c.time_s < best);
            if (better) {
                best = c.time_s;
                best_fits = c.fits;
                row.cheapest = c.name;
                row.cheapest_family = c.family;
            }
            row.cells.push_back(c);
        }
        row.agrees = row.cheapest_family == row.seed_rule;
        row.speedup_vs_dense = dense_t > 0.0 && best > 0.0 ? dense_t / best : 1.0;
        out.push_back(row);
    }
    return out;
}

} // namespace attnlab
