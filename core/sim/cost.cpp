#include "sim/cost.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "base/error.h"
#include "methods/method.h"
#include "sim/calibration.h"

namespace attnlab {

const char * sim_phase_name(sim_phase p) { return p == sim_phase::prefill ? "prefill" : "decode"; }
const char * attn_impl_name(attn_impl a) { return a == attn_impl::flash ? "flash" : "naive"; }

namespace {

std::string fmt_num(double x) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%g", x);
    return buf;
}

// The pseudo-method `density`: any block-density method, priced at rho.
const method_info & density_entry() {
    static const method_info e = [] {
        method_info d;
        d.name = "density";
        d.params = {param_real("rho", "", 0.0, 1.0, true, "target block density"), param_block()};
        d.cost = method_cost::block_density;
        d.family = "block_sparse";
        return d;
    }();
    return e;
}

// Keys only the simulator reads, on top of the method's own.
std::vector<method_param> sim_keys() {
    return {param_real("overhead", "0", 0.0, 10.0, false, "predictor FLOPs as a share of dense attention FLOPs"),
            param_real("eff", "1", 0.0, 1.0, true, "sparse kernel efficiency relative to the dense kernel"),
            param_real("fixed_us", "0", 0.0, 1e7, false, "fixed latency per layer, microseconds")};
}

std::string sim_names() {
    std::string r;
    for (const method_info & e : method_registry()) {
        if (e.cost != method_cost::none) r += e.name + ", ";
    }
    return r + density_entry().name;
}

sim_method sim_method_from(const method_spec & s) {
    const method_info * e = s.name == density_entry().name ? &density_entry() : method_find(s.name);
    if (!e) throw input_error("--method", "method", "\"" + s.name + "\" is not one of " + sim_names());
    if (e->cost == method_cost::none) {
        throw input_error("--method", "method", "the simulator does not model " + s.name + " (it models " + sim_names() + ")");
    }
    if (e == &density_entry() && !s.find("rho") && !s.find("density")) {
        throw input_error("--method", "method.rho", s.name + " needs rho=DENSITY");
    }
    method_info with = *e;
    for (const method_param & p : sim_keys()) with.params.push_back(p);
    const method_args a = method_args_resolve(s, with);
    sim_method m;
    m.name = s.name;
    m.family = e->family;
    m.block = a.integer("B");
    m.overhead_share = a.real("overhead");
    m.kernel_eff = a.real("eff");
    m.fixed_us = a.real("fixed_us");
    if (e->cost == method_cost::window) {
        m.kind = sim_method_kind::window;
        m.window = a.integer("w");
    } else if (e->cost == method_cost::block_density) {
        m.kind = sim_method_kind::block_density;
        m.density = a.real("rho");
    }
    return m;
}

} // namespace

sim_method sim_method_parse(const std::string & spec) {
    try {
        return sim_method_from(method_spec_parse(spec));
    } catch (const input_error & e) {
        if (e.file() == "--method") throw;
        // The grammar's and the resolver's errors, as the simulator names them.
        const std::string what = e.what(), msg = what.substr(std::min(what.size(), e.file().size() + e.field().size() + 4));
        throw input_error("--method", e.field() == "name" ? "method" : "method." + e.field(), msg + " (in \"" + spec + "\")");
    }
}

std::string sim_method_spec(const sim_method & m) {
    std::string s = m.name;
    if (m.kind == sim_method_kind::dense) return s;
    s += ":";
    if (m.kind == sim_method_kind::window) s += "w=" + std::to_string(m.window);
    else s += "rho=" + fmt_num(m.density);
    s += ",B=" + std::to_string(m.block);
    if (m.overhead_share > 0.0) s += ",overhead=" + fmt_num(m.overhead_share);
    if (m.kernel_eff != 1.0) s += ",eff=" + fmt_num(m.kernel_eff);
    if (m.fixed_us > 0.0) s += ",fixed_us=" + fmt_num(m.fixed_us);
    return s;
}

double roofline_time(double flops, double bytes, double peak_flops_per_s, double bytes_per_s, bool * memory_bound) {
    const double tc = flops / peak_flops_per_s;
    const double tm = bytes / bytes_per_s;
    if (memory_bound) *memory_bound = tm > tc;
    return std::max(tc, tm);
}

double sim_kv_cache_bytes(const model_preset & m, int64_t L, int bytes) {
    return 2.0 * m.n_layer * double(m.n_head_kv) * m.head_dim * double(L) * bytes;
}

namespace {

// Kept key blocks of query block I whose first row is i0 (decode: the row itself).
int64_t kept_blocks_of(const sim_method & m, int64_t I, int64_t i0) {
    const int64_t causal = I + 1;
    switch (m.kind) {
    case sim_method_kind::dense:
        return causal;
    case sim_method_kind::window: {
        const int64_t lo = std::max<int64_t>(0, i0 - m.window + 1);
        return I - lo / m.block + 1;
    }
    case sim_method_kind::block_density: {
        int64_t k = int64_t(std::ceil(m.density * double(causal) - 1e-9));
        return std::min(causal, std::max(k, std::min<int64_t>(causal, 2)));
    }
    }
    return causal;
}

} // namespace

sim_attention_plan sim_attention_plan_make(const sim_method & m, int64_t L, sim_phase phase) {
    sim_attention_plan p;
    const int64_t B = m.block;
    if (phase == sim_phase::prefill) {
        const int64_t nb = (L + B - 1) / B;
        for (int64_t I = 0; I < nb; I++) {
            const int64_t r = std::min(B, L - I * B);  // rows of this query block
            const int64_t k = kept_blocks_of(m, I, I * B);
            p.causal_blocks += I + 1;
            p.kept_blocks += k;
            // off-diagonal kept blocks are full B x r; the diagonal one is causal-triangular
            p.pairs += double(k - 1) * double(r) * double(B) + double(r) * double(r + 1) / 2.0;
            p.keys_read += double(k - 1) * double(B) + double(r);
        }
    } else {
        // one query at row L, keys 0..L
        const int64_t I = L / B;
        const int64_t k = kept_blocks_of(m, I, L);
        p.causal_blocks = I + 1;
        p.kept_blocks = k;
        p.pairs = double(k - 1) * double(B) + double(L - I * B + 1);
        p.keys_read = p.pairs;
    }
    p.block_density = p.causal_blocks > 0 ? double(p.kept_blocks) / double(p.causal_blocks) : 1.0;
    return p;
}

namespace {

sim_component make_component(const std::string & name, double flops, double bytes, double rate, double bw, int n_gpu,
                             double fixed_s = 0.0) {
    sim_component c;
    c.name = name;
    c.flops = flops / n_gpu;
    c.bytes = bytes / n_gpu;
    c.intensity = c.bytes > 0.0 ? c.flops / c.bytes : 0.0;
    c.compute_s = c.flops / rate;
    c.memory_s = c.bytes / bw;
    c.time_s = roofline_time(c.flops, c.bytes, rate, bw, &c.memory_bound) + fixed_s;
    c.peak_used_tflops = rate / 1e12;
    return c;
}

} // namespace

sim_result sim_run(const model_preset & model, const hw_preset & hw, const sim_method & method, const sim_options & opt) {
    if (opt.ctx < 1 || opt.ctx > (int64_t(1) << 30)) throw input_error("--ctx", "ctx", "must be in 1..2^30");
    if (opt.batch < 1 || opt.batch > 1000000) throw input_error("--batch", "batch", "must be in 1..1e6");
    if (opt.n_gpu < 1 || opt.n_gpu > 100000) throw input_error("--gpus", "n_gpu", "must be >= 1");
    if (!(opt.eff_compute > 0.0 && opt.eff_compute <= 1.0)) throw input_error("--eff-compute", "eff_compute", "must be in (0, 1]");
    if (!(opt.eff_memory > 0.0 && opt.eff_memory <= 1.0)) throw input_error("--eff-memory", "eff_memory", "must be in (0, 1]");
    if (opt.price_per_hour < 0.0) throw input_error("--price", "price", "must be >= 0");

    sim_result r;
    r.model = model.name;
    r.hw = hw.name;
    r.method_spec = sim_method_spec(method);
    r.opt = opt;
    r.calibrated = opt.calib != nullptr;

    const int wb = opt.bytes_weight ? opt.bytes_weight : hw.precision_bytes();
    const int ab = opt.bytes_act ? opt.bytes_act : hw.precision_bytes();
    const int kb = opt.bytes_kv ? opt.bytes_kv : hw.precision_bytes();
    const int sb = opt.bytes_score ? opt.bytes_score : hw.precision_bytes();
    const double peak = hw.dense_tflops * 1e12;
    const double bw = hw.mem_bw_gbs * 1e9 * opt.eff_memory;
    const double rate = peak * opt.eff_compute;
    const int nG = opt.n_gpu;

    const double b = opt.batch;
    const double L = double(opt.ctx);
    const double d = model.hidden, q = double(model.q_dim()), kv = double(model.kv_dim()), F = model.ffn;
    const double H = model.n_head, G = model.n_head_kv, hd = model.head_dim, V = model.vocab;
    const bool prefill = opt.phase == sim_phase::prefill;
    const bool naive = opt.impl == attn_impl::naive;
    const bool sparse = method.kind != sim_method_kind::dense;

    // --- linear layers: Q, K, V, O projections and the SwiGLU MLP ---
    // Activation traffic per token, in elements: each op reads its input and
    // writes its output once (QKV, RoPE on q and k, O, gate/up, SiLU*up, down,
    // two RMSNorms, two residual adds).
    const double act_elems = 14.0 * d + 4.0 * q + 4.0 * kv + 6.0 * F;
    const double T = prefill ? b * L : b;
    r.layer.push_back(make_component("linear", 2.0 * T * double(model.layer_matmul_params()),
                                     double(model.layer_params()) * wb + T * act_elems * ab, rate, bw, nG));

    // --- attention ---
    r.plan = sim_attention_plan_make(method, opt.ctx, opt.phase);
    sim_method dense_m;
    dense_m.block = method.block;
    const sim_attention_plan dense_plan = sim_attention_plan_make(dense_m, opt.ctx, opt.phase);
    double attn_rate = rate * (sparse ? method.kernel_eff : 1.0);
    double attn_fixed_s = 0.0;   // per launch (one per layer), from the calibration's fit
    if (opt.calib) {
        attn_rate = peak * opt.calib->efficiency(sparse ? r.plan.block_density : 1.0);
        attn_fixed_s = opt.calib->overhead_ms(sparse ? r.plan.block_density : 1.0) * 1e-3;
        if (naive) r.notes.push_back("calibration measured flash-style kernels; the naive implementation uses the calibrated rate too");
    }
    double attn_flops = 0.0, attn_bytes = 0.0;
    if (prefill) {
        if (naive) {
            attn_flops = 4.0 * hd * H * L * L * b;
            // Q, K, V read per head, O written; S written, read and written by
            // softmax, P read by PV: 4 passes over L x L per head.
            attn_bytes = b * (2.0 * L * q * ab + 2.0 * H * L * hd * ab + 4.0 * H * L * L * sb);
        } else {
            attn_flops = 4.0 * hd * H * r.plan.pairs * b;
            // Q read and O written once; K and V read once per query head: the
            // query tiles of one head run side by side and share K/V tiles
            // through L2, so HBM sees each about once (plan.keys_read counts
            // the tile-level reads without that reuse, an upper bound)
            attn_bytes = b * (2.0 * L * q * ab + H * L * hd * 2.0 * ab);
        }
    } else {
        attn_flops = 4.0 * hd * H * r.plan.pairs * b;
        // a decode kernel reads each K/V head once for its group of query heads
        attn_bytes = b * (2.0 * q * ab + G * hd * 2.0 * r.plan.keys_read * kb + 2.0 * kv * kb);
        if (naive) attn_bytes += b * 4.0 * H * (L + 1.0) * sb;
    }
    r.layer.push_back(make_component("attention", attn_flops, attn_bytes, attn_rate, bw, nG, attn_fixed_s));

    if (sparse && (method.overhead_share > 0.0 || method.fixed_us > 0.0)) {
        const double dense_attn_flops = 4.0 * hd * H * dense_plan.pairs * b;
        const double nb = double((opt.ctx + method.block - 1) / method.block);
        const double pbytes = prefill ? b * L * (q + kv) * ab          // read Q and K once to pool them
                                      : b * (q * ab + G * hd * nb * kb); // the pooled key cache
        r.layer.push_back(make_component("predictor", method.overhead_share * dense_attn_flops, pbytes, rate, bw, nG,
                                         method.fixed_us * 1e-6));
    }

    // --- lm_head ---
    const double T_logits = prefill ? (opt.logits_all ? b * L : b) : b;
    r.head = make_component("lm_head", 2.0 * T_logits * V * d, V * d * wb + T_logits * (d * ab + V * 4.0), rate, bw, nG);

    double tmax = -1.0;
    for (const sim_component & c : r.layer) {
        r.layer_flops += c.flops;
        r.layer_bytes += c.bytes;
        r.layer_time_s += c.time_s;
        if (c.time_s > tmax) {
            tmax = c.time_s;
            r.layer_memory_bound = c.memory_bound;
        }
    }
    r.layer_intensity = r.layer_bytes > 0.0 ? r.layer_flops / r.layer_bytes : 0.0;
    r.flops = model.n_layer * r.layer_flops + r.head.flops;
    r.bytes = model.n_layer * r.layer_bytes + r.head.bytes;
    r.time_s = model.n_layer * r.layer_time_s + r.head.time_s;
    r.tokens = T;
    r.tokens_per_s = r.time_s > 0.0 ? T / r.time_s : 0.0;
    if (opt.price_per_hour > 0.0) r.cost_per_mtok = opt.price_per_hour * nG / 3600.0 * r.time_s / T * 1e6;

    // --- memory, per GPU ---
    const double kv_tokens = prefill ? L : L + 1.0;
    r.mem_weights = double(model.total_params()) * wb / nG;
    r.mem_kv_cache = b * sim_kv_cache_bytes(model, int64_t(kv_tokens), kb) / nG;
    if (prefill) {
        r.mem_activations = (b * L * (2.0 * d + std::max(q + 2.0 * kv, 2.0 * F)) * ab + T_logits * V * 4.0) / nG;
    } else {
        r.mem_activations = (b * (2.0 * d + std::max(q + 2.0 * kv, 2.0 * F)) * ab + b * V * 4.0) / nG;
    }
    const double rows = prefill ? L : 1.0;
    const double cols = prefill ? L : L + 1.0;
    r.score_bytes_naive_head = rows * cols * sb;
    r.score_bytes_naive_layer = b * H * rows * cols * sb / nG;
    r.score_bytes_flash_layer = b * H * rows * 4.0 / nG; // running max/sum per row, fp32
    r.mem_scores = naive ? r.score_bytes_naive_layer : r.score_bytes_flash_layer;
    r.mem_total = r.mem_weights + r.mem_kv_cache + r.mem_activations + r.mem_scores;
    r.fits = r.mem_total <= hw.mem_gb * 1e9;

    // --- notes ---
    if (opt.ctx > model.context) {
        r.notes.push_back("ctx " + std::to_string(opt.ctx) + " exceeds the model's context " + std::to_string(model.context) +
                          ": simulated as if the model were extended");
    }
    if (naive && sparse && prefill) {
        r.notes.push_back("a naive (eager) implementation computes the full L x L matrix and masks it: the sparse mask saves nothing");
    }
    if (model.sliding_window > 0) {
        r.notes.push_back(model.name + " was trained with a " + std::to_string(model.sliding_window) +
                          "-token sliding window; simulated as the method given, not as its native window");
    }
    if (!r.fits) {
        char buf[200];
        std::snprintf(buf, sizeof(buf), "does not fit: %.1f GB needed per GPU, %.0f GB available (try more GPUs)", r.mem_total / 1e9, hw.mem_gb);
        r.notes.push_back(buf);
    }
    if (opt.calib) r.notes.push_back("attention rate calibrated from " + opt.calib->source);
    return r;
}

} // namespace attnlab
