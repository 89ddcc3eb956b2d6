#include "sim/calibration.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <dirent.h>
#include <map>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_read.h"
#include "sim/cost.h"

namespace attnlab {

using nlohmann::json;

std::vector<bench_row> bench_rows_parse(const std::string & text, const std::string & file, int * skipped) {
    const json j = json_parse(file, "json", text);
    const json * arr = &j;
    json meta = json::object();
    if (j.is_object()) {
        if (!j.contains("rows")) throw input_error(file, "rows", "missing: expected an array of rows or {\"rows\": [...]}");
        arr = &j["rows"];
        if (j.contains("meta")) {
            if (!j["meta"].is_object()) throw input_error(file, "meta", "must be an object");
            meta = j["meta"];
        }
    }
    if (!arr->is_array()) throw input_error(file, "rows", "must be an array");
    std::vector<bench_row> out;
    int idx = -1, skip = 0;
    for (const json & x : *arr) {
        idx++;
        const std::string at = "rows[" + std::to_string(idx) + "]";
        if (!x.is_object()) throw input_error(file, at, "must be an object");
        // a field of the row, else of meta, under any of its names
        auto find = [&](std::initializer_list<const char *> keys, std::string * where) -> const json * {
            for (const char * k : keys) {
                auto it = x.find(k);
                if (it != x.end()) { *where = at + "." + k; return &*it; }
            }
            for (const char * k : keys) {
                auto it = meta.find(k);
                if (it != meta.end()) { *where = std::string("meta.") + k; return &*it; }
            }
            *where = at + "." + *keys.begin();
            return nullptr;
        };
        auto num = [&](std::initializer_list<const char *> keys, bool required, double def) -> double {
            std::string where;
            const json * v = find(keys, &where);
            if (!v || v->is_null()) {
                if (required) throw input_error(file, where, "missing");
                return def;
            }
            if (!v->is_number()) throw input_error(file, where, "must be a number");
            const double d = v->get<double>();
            if (!std::isfinite(d)) throw input_error(file, where, "not finite");
            return d;
        };
        auto str = [&](std::initializer_list<const char *> keys) -> std::string {
            std::string where;
            const json * v = find(keys, &where);
            if (!v || !v->is_string()) throw input_error(file, where, "missing or not a string");
            return v->get<std::string>();
        };
        // rows that time something other than attention at a density (the gate)
        std::string where;
        const json * dens = find({"density"}, &where);
        const json * tf = find({"tflops"}, &where);
        if (dens && dens->is_null()) { skip++; continue; }
        if (tf && tf->is_null()) { skip++; continue; }
        bench_row r;
        r.file = file;
        r.index = idx;
        r.device = str({"device"});
        r.kernel = str({"kernel", "method"});
        r.L = int64_t(num({"L"}, true, 0));
        r.head_dim = int(num({"head_dim", "D"}, true, 0));
        const json * c = find({"causal"}, &where);
        // bench/gpu/bench.py writes 0/1; accept booleans too
        if (c && c->is_boolean()) r.causal = c->get<bool>();
        else if (c && c->is_number_integer() && (c->get<int64_t>() == 0 || c->get<int64_t>() == 1)) r.causal = c->get<int64_t>() == 1;
        else throw input_error(file, where, "missing or not true/false/0/1");
        r.density = num({"density"}, true, 1.0);
        r.ms = num({"ms", "time_ms"}, true, 0.0);
        r.tflops = num({"tflops"}, false, 0.0);
        r.batch = int(num({"batch", "B"}, false, 0));
        r.heads = int(num({"heads", "H"}, false, 0));
        r.block = int(num({"block"}, false, 64));
        if (r.L < 1) throw input_error(file, at + ".L", "must be >= 1");
        if (r.head_dim < 1) throw input_error(file, at + ".head_dim", "must be >= 1");
        if (!(r.density > 0.0 && r.density <= 1.0)) throw input_error(file, at + ".density", "must be in (0, 1]");
        if (!(r.ms > 0.0)) throw input_error(file, at + ".ms", "must be > 0");
        if (r.tflops < 0.0) throw input_error(file, at + ".tflops", "must be >= 0");
        if (r.block != 16 && r.block != 32 && r.block != 64 && r.block != 128) throw input_error(file, at + ".block", "must be 16, 32, 64 or 128");
        if (r.tflops <= 0.0 && (r.batch <= 0 || r.heads <= 0)) {
            throw input_error(file, at + ".tflops", "needed (> 0) when batch and heads are not given");
        }
        out.push_back(r);
    }
    if (skipped) *skipped += skip;
    return out;
}

std::vector<bench_row> bench_rows_read(const std::string & path, int * skipped) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
        throw input_error(path, "bench_results",
                          "not found: run the kernel benchmarks first (they write bench/results/*.json), or pass --bench FILE");
    }
    std::vector<std::string> files;
    if (S_ISDIR(st.st_mode)) {
        DIR * d = opendir(path.c_str());
        if (!d) throw input_error(path, "bench_results", "cannot open folder");
        while (dirent * e = readdir(d)) {
            std::string n = e->d_name;
            if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0) files.push_back(path + "/" + n);
        }
        closedir(d);
        std::sort(files.begin(), files.end());
        if (files.empty()) throw input_error(path, "bench_results", "no *.json files: run the kernel benchmarks first");
    } else {
        files.push_back(path);
    }
    std::vector<bench_row> rows;
    for (const std::string & f : files) {
        std::vector<bench_row> part = bench_rows_parse(sim_read_text(f), f, skipped);
        rows.insert(rows.end(), part.begin(), part.end());
    }
    return rows;
}

double bench_row_work(const bench_row & r) {
    if (r.tflops > 0.0) return r.tflops * 1e12 * r.ms * 1e-3;
    {
        sim_method m;
        m.block = r.block;
        if (r.density < 1.0) {
            m.kind = sim_method_kind::block_density;
            m.density = r.density;
        }
        double pairs = 0.0;
        if (r.causal) {
            pairs = sim_attention_plan_make(m, r.L, sim_phase::prefill).pairs;
        } else {
            pairs = double(r.L) * double(r.L) * r.density; // non-causal: no block plan, density of L^2
        }
        return 4.0 * r.head_dim * pairs * r.batch * r.heads;
    }
}

bool bench_device_matches(const hw_preset & hw, const std::string & device) {
    auto lower = [](std::string s) {
        for (char & c : s) c = char(std::tolower((unsigned char) c));
        return s;
    };
    const std::string dev = lower(device);
    std::vector<std::string> keys = hw.device_match;
    if (keys.empty()) keys.push_back(hw.name);
    for (const std::string & k : keys) {
        if (!k.empty() && dev.find(lower(k)) != std::string::npos) return true;
    }
    return false;
}

namespace {

// Linear interpolation in density of one field of the points, clamped.
template <class F> double interp_density(const std::vector<kernel_rate_point> & pts, double density, F field) {
    if (pts.empty()) return 0.0;
    if (density <= pts.front().density) return field(pts.front());
    if (density >= pts.back().density) return field(pts.back());
    for (size_t i = 1; i < pts.size(); i++) {
        if (density <= pts[i].density) {
            const double t = (density - pts[i - 1].density) / (pts[i].density - pts[i - 1].density);
            return field(pts[i - 1]) + t * (field(pts[i]) - field(pts[i - 1]));
        }
    }
    return field(pts.back());
}

} // namespace

double sim_calibration::efficiency(double density) const {
    if (points.empty()) return 1.0;
    return interp_density(points, density, [](const kernel_rate_point & p) { return p.efficiency; });
}

double sim_calibration::overhead_ms(double density) const {
    return interp_density(points, density, [](const kernel_rate_point & p) { return p.overhead_ms; });
}

double sim_calibration::time_ms(double density, double work, double peak_flops) const {
    return overhead_ms(density) + work / (peak_flops * efficiency(density)) * 1e3;
}

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bool is_dense_kernel(const std::string & k) { return k.find("dense") != std::string::npos; }

} // namespace

namespace {

// Rows of this device, causality and kernel name (empty: any) at the head_dim
// nearest to the one asked for.
std::vector<const bench_row *> rows_for(const std::vector<bench_row> & rows, const hw_preset & hw, int head_dim, bool causal) {
    std::vector<const bench_row *> cand;
    for (const bench_row & r : rows) {
        if (r.causal == causal && bench_device_matches(hw, r.device)) cand.push_back(&r);
    }
    if (cand.empty()) return cand;
    int best_hd = cand.front()->head_dim;
    for (const bench_row * r : cand) {
        if (std::abs(r->head_dim - head_dim) < std::abs(best_hd - head_dim)) best_hd = r->head_dim;
    }
    std::vector<const bench_row *> out;
    for (const bench_row * r : cand)
        if (r->head_dim == best_hd) out.push_back(r);
    return out;
}

double row_eff(const bench_row & r, const hw_preset & hw) { return bench_row_work(r) / (r.ms * 1e-3) / (hw.dense_tflops * 1e12); }

} // namespace

std::vector<kernel_rate_point> kernel_rate_curve(const std::vector<bench_row> & rows, const hw_preset & hw,
                                                 const std::string & kernel, int head_dim, bool causal, int64_t exclude_L) {
    const double peak = hw.dense_tflops * 1e12;
    std::map<long, std::vector<const bench_row *>> by_density; // density in 1e-4 steps
    for (const bench_row * r : rows_for(rows, hw, head_dim, causal)) {
        if (r->kernel != kernel || r->L == exclude_L) continue;
        by_density[std::lround(r->density * 1e4)].push_back(r);
    }
    std::vector<kernel_rate_point> pts;
    for (const auto & kv : by_density) {
        kernel_rate_point p;
        p.density = kv.first / 1e4;
        p.rows = int(kv.second.size());
        std::vector<int64_t> Ls;
        for (const bench_row * r : kv.second) Ls.push_back(r->L);
        std::sort(Ls.begin(), Ls.end());
        p.lengths = int(std::unique(Ls.begin(), Ls.end()) - Ls.begin());
        // Minimise sum ((a + b w - t) / t)^2: with u = 1/t, rows (u, w u) -> 1.
        double suu = 0, suw = 0, sww = 0, su = 0, sw = 0;
        for (const bench_row * r : kv.second) {
            const double u = 1.0 / r->ms, wu = bench_row_work(*r) * u;
            suu += u * u; suw += u * wu; sww += wu * wu; su += u; sw += wu;
        }
        double a = 0.0, b = sw / sww;   // through the origin
        const double det = suu * sww - suw * suw;
        if (p.lengths >= 2 && det > 1e-12 * suu * sww) {
            const double a2 = (su * sww - suw * sw) / det, b2 = (suu * sw - suw * su) / det;
            if (a2 >= 0.0 && b2 > 0.0) { a = a2; b = b2; }
        }
        p.overhead_ms = a;
        p.efficiency = 1e3 / (b * peak);   // b: ms per FLOP
        pts.push_back(p);
    }
    return pts;
}

sim_calibration calibration_fit(const std::vector<bench_row> & rows, const hw_preset & hw, int head_dim, bool causal,
                                const std::string & dense_kernel, const std::string & sparse_kernel) {
    std::vector<const bench_row *> cand = rows_for(rows, hw, head_dim, causal);
    if (cand.empty()) {
        throw input_error(rows.empty() ? std::string("bench results") : rows.front().file, "device",
                          "no measured rows for hardware \"" + hw.name + "\" (device_match) with causal=" + (causal ? "true" : "false"));
    }
    // candidate kernels and their median efficiency
    std::map<std::string, std::vector<double>> dense_eff, sparse_eff;
    for (const bench_row * r : cand) {
        const bool full = r->density >= 0.999;
        if (full && is_dense_kernel(r->kernel) && r->kernel.find(dense_kernel) != std::string::npos) dense_eff[r->kernel].push_back(row_eff(*r, hw));
        if (!full && r->kernel.find(sparse_kernel) != std::string::npos) sparse_eff[r->kernel].push_back(row_eff(*r, hw));
    }
    auto best = [](const std::map<std::string, std::vector<double>> & m) {
        std::string name;
        double top = -1.0;
        for (const auto & kv : m) {
            const double e = median(kv.second);
            if (e > top) { top = e; name = kv.first; }
        }
        return name;
    };
    sim_calibration c;
    c.hw = hw.name;
    c.head_dim = cand.front()->head_dim;
    c.causal = causal;
    c.dense_kernel = best(dense_eff);
    c.sparse_kernel = best(sparse_eff);
    if (c.dense_kernel.empty() && c.sparse_kernel.empty()) {
        throw input_error(cand.front()->file, "kernel", "no dense kernel matching \"" + dense_kernel + "\" and no sparse kernel matching \"" +
                                                            sparse_kernel + "\" for \"" + hw.name + "\"");
    }
    std::vector<kernel_rate_point> pd, ps;
    if (!c.dense_kernel.empty()) pd = kernel_rate_curve(rows, hw, c.dense_kernel, head_dim, causal);
    if (!c.sparse_kernel.empty()) ps = kernel_rate_curve(rows, hw, c.sparse_kernel, head_dim, causal);
    for (const kernel_rate_point & p : ps) {
        if (p.density >= 0.999 && !pd.empty()) continue;  // density 1 comes from the dense kernel
        c.points.push_back(p);
    }
    for (const kernel_rate_point & p : pd) {
        if (p.density >= 0.999) c.points.push_back(p);
    }
    std::vector<std::string> files;
    for (const bench_row * r : cand) {
        if ((r->kernel == c.dense_kernel || r->kernel == c.sparse_kernel) && std::find(files.begin(), files.end(), r->file) == files.end()) {
            files.push_back(r->file);
        }
    }
    for (const std::string & f : files) c.source += (c.source.empty() ? "" : ", ") + f;
    return c;
}

std::vector<calib_point> calibration_check(const std::vector<bench_row> & rows, const hw_preset & hw, double eff_compute) {
    std::vector<calib_point> out;
    const double peak = hw.dense_tflops * 1e12;
    for (const bench_row & r : rows) {
        if (!bench_device_matches(hw, r.device)) continue;
        calib_point p;
        p.row = r;
        p.work = bench_row_work(r);
        p.measured_eff = p.work / (r.ms * 1e-3) / peak;
        // the row's own kernel, fitted on the other lengths when they cover this density
        sim_calibration c;
        c.points = kernel_rate_curve(rows, hw, r.kernel, r.head_dim, r.causal, r.L);
        bool covered = false;
        for (const auto & pt : c.points) covered = covered || std::fabs(pt.density - r.density) < 1e-4;
        p.leave_one_out = covered;
        if (!covered) c.points = kernel_rate_curve(rows, hw, r.kernel, r.head_dim, r.causal, -1);
        p.predicted_ms = c.time_ms(r.density, p.work, peak);
        p.datasheet_ms = p.work / (peak * eff_compute) * 1e3;
        p.error = (p.predicted_ms - r.ms) / r.ms;
        p.datasheet_error = (p.datasheet_ms - r.ms) / r.ms;
        out.push_back(p);
    }
    return out;
}

} // namespace attnlab
