// learned_gate: a per-head bilinear gate on pooled blocks, distilled from the
// true block attention mass (see learned_gate.h for the definition and the
// file format).
#include "methods/learned_gate.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include <Eigen/Core>

#include "base/error.h"
#include "io/safetensors.h"
#include "base/job.h"
#include "methods/train/adam.h"
#include "methods/train/calib.h"
#include "methods/train/st_meta.h"

namespace attnlab {

namespace {

using mat_d = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// One calibration window of one head: pooled Q, K and the target block mass.
struct gate_sample {
    int nb = 0;
    bool causal = true;
    mat_d qm, km, T;
};

gate_sample gate_sample_of(const head_inputs & in, int B) {
    gate_sample s;
    s.nb = (in.n_tokens + B - 1) / B;
    s.causal = in.causal;
    std::vector<double> qm, km;
    pool_blocks(in, B, qm, km);
    s.qm = Eigen::Map<mat_d>(qm.data(), s.nb, in.head_dim);
    s.km = Eigen::Map<mat_d>(km.data(), s.nb, in.head_dim);
    std::vector<double> T = block_mass_target(in, B);
    s.T = Eigen::Map<mat_d>(T.data(), s.nb, s.nb);
    return s;
}

// Masked row softmax of z (causal: J <= I) into P, in place.
void softmax_rows(mat_d & z, bool causal) {
    const int nb = (int) z.rows();
    for (int I = 0; I < nb; ++I) {
        const int n = causal ? I + 1 : nb;
        double mx = -HUGE_VAL;
        for (int J = 0; J < n; ++J) mx = std::max(mx, z(I, J));
        double sum = 0.0;
        for (int J = 0; J < n; ++J) sum += (z(I, J) = std::exp(z(I, J) - mx));
        for (int J = 0; J < n; ++J) z(I, J) /= sum;
        for (int J = n; J < nb; ++J) z(I, J) = 0.0;
    }
}

// Loss mean_I KL(T_I ‖ P_I) over the query blocks with more than one causal
// key block (the others are trivially exact), and its gradient in w = [W_q; W_k].
double gate_loss(const std::vector<gate_sample> & S, int d, int dg, const std::vector<double> & w, std::vector<double> * grad) {
    Eigen::Map<const mat_d> Wq(w.data(), d, dg), Wk(w.data() + (size_t) d * dg, d, dg);
    const double inv_sqrt = 1.0 / std::sqrt((double) dg);
    int64_t n_rows = 0;
    for (const auto & s : S) n_rows += s.causal ? std::max(0, s.nb - 1) : s.nb;
    if (n_rows == 0) n_rows = 1;
    mat_d gWq = mat_d::Zero(d, dg), gWk = mat_d::Zero(d, dg);
    double loss = 0.0;
    for (const auto & s : S) {
        const mat_d qt = s.qm * Wq, kt = s.km * Wk;
        mat_d P = (qt * kt.transpose()) * inv_sqrt;
        softmax_rows(P, s.causal);
        mat_d G = mat_d::Zero(s.nb, s.nb);
        for (int I = 0; I < s.nb; ++I) {
            const int n = s.causal ? I + 1 : s.nb;
            if (n < 2 && s.causal) continue;
            double tsum = 0.0;
            for (int J = 0; J < n; ++J) {
                const double t = s.T(I, J);
                tsum += t;
                if (t > 0.0) loss += t * (std::log(t) - std::log(std::max(P(I, J), 1e-300)));
            }
            // d/dz of Σ_J T log T/P with P = softmax(z): ΣT·P − T.
            for (int J = 0; J < n; ++J) G(I, J) = (tsum * P(I, J) - s.T(I, J)) / n_rows;
        }
        if (grad) {
            gWq.noalias() += s.qm.transpose() * (G * kt) * inv_sqrt;
            gWk.noalias() += s.km.transpose() * (G.transpose() * qt) * inv_sqrt;
        }
    }
    if (grad) {
        grad->resize(w.size());
        Eigen::Map<mat_d>(grad->data(), d, dg) = gWq;
        Eigen::Map<mat_d>(grad->data() + (size_t) d * dg, d, dg) = gWk;
    }
    return loss / n_rows;
}

// The random gate: independent W_q, W_k ~ N(0, 1/d) (q̃ keeps the scale of Q̄).
void gate_init_weights(int d, int dg, uint64_t seed, int layer, int head, float * wq, float * wk) {
    const double sd = 1.0 / std::sqrt((double) d);
    for (int i = 0; i < d * dg; ++i) {
        wq[i] = (float) (sd * mix_normal(seed, layer, head, 0, i));
        wk[i] = (float) (sd * mix_normal(seed, layer, head, 1, i));
    }
}

} // namespace

gate_params gate_random(int n_head, int head_dim, const std::vector<int> & layers, int block, int d_g, uint64_t seed) {
    gate_params p;
    p.block = block;
    p.d_g = d_g;
    p.head_dim = head_dim;
    p.n_head = n_head;
    p.seed = seed;
    p.layers = layers;
    std::sort(p.layers.begin(), p.layers.end());
    const size_t per = (size_t) head_dim * d_g;
    p.wq.assign(p.layers.size() * n_head * per, 0.0f);
    p.wk = p.wq;
    p.initial_loss.assign(p.layers.size() * n_head, 0.0f);
    p.final_loss = p.initial_loss;
    p.val_loss = p.initial_loss;
    for (size_t li = 0; li < p.layers.size(); ++li) {
        for (int h = 0; h < n_head; ++h) {
            const size_t off = (li * n_head + h) * per;
            gate_init_weights(head_dim, d_g, seed, p.layers[li], h, &p.wq[off], &p.wk[off]);
        }
    }
    return p;
}

gate_params gate_train(const std::vector<const qkv_capture *> & calib, const gate_train_options & o) {
    const trace_info & info = check_calibration_set(calib, "learned_gate training");
    if (!block_size_valid(o.block)) throw input_error("learned_gate training", "block", "not one of 16, 32, 64, 128");
    if (o.d_g < 1 || o.d_g > 1024) throw input_error("learned_gate training", "d_g", "out of range [1, 1024]");
    if (o.steps < 1) throw input_error("learned_gate training", "steps", "need at least one step");
    std::vector<size_t> cap_index;
    const std::vector<int> layers = calib_layers(info, o.layers, cap_index);

    gate_params p = gate_random(info.n_head, info.head_dim, layers, o.block, o.d_g, o.seed);
    p.steps = o.steps;
    p.lr = o.lr;
    p.ctx = info.n_tokens();
    p.windows = (int) calib.size();
    p.val_windows = calib.size() >= 2 ? (int) std::max<size_t>(1, calib.size() / 4) : 0;
    p.val_loss.assign(p.final_loss.size(), 0.0f);
    p.prov = calib_provenance(info, "learned_gate");
    if (o.keep_curves) p.curves.assign(layers.size() * info.n_head, {});

    const int d = info.head_dim, dg = o.d_g, n_head = info.n_head;
    const int n_jobs = (int) layers.size() * n_head;
    const size_t per = (size_t) d * dg;
    std::atomic<int> done{0};
    job_progress * prog = o.progress;
    job_step(prog, 0.0, "training gates");
    // Heads are independent: one Adam each, heads in parallel.
#pragma omp parallel for schedule(dynamic, 1)
    for (int job = 0; job < n_jobs; ++job) {
        if (prog && prog->cancelled()) continue;
        const int li = job / n_head, h = job % n_head;
        // The last quarter of the windows (at least one, when there are two or
        // more) is held out: the kept weights are those of the best held-out loss.
        std::vector<gate_sample> S, V;
        const size_t n_val = calib.size() >= 2 ? std::max<size_t>(1, calib.size() / 4) : 0;
        for (size_t c = 0; c < calib.size(); ++c) {
            (c + n_val < calib.size() ? S : V).push_back(gate_sample_of(capture_head_of(*calib[c], cap_index[li], h).in, o.block));
        }
        // Init W_q = W_k = R, E[R Rᵀ] = sqrt(d_g)·s·I: the gate starts as a
        // random projection of block_topk's pooled score s·Q̄K̄ᵀ.
        std::vector<double> w(2 * per);
        const double sd = std::sqrt(1.0 / std::sqrt((double) d) / std::sqrt((double) dg));
        for (size_t i = 0; i < per; ++i) w[i] = w[per + i] = sd * mix_normal(o.seed, layers[li], h, 2, i);
        adam opt(w.size(), adam_options{o.lr});
        std::vector<double> g, curve, best_w = w;
        double l0 = 0.0, best_val = V.empty() ? 0.0 : gate_loss(V, d, dg, w, nullptr);
        for (int t = 0; t < o.steps; ++t) {
            if (prog && prog->cancelled()) break;
            const double l = gate_loss(S, d, dg, w, &g);
            if (t == 0) l0 = l;
            if (o.keep_curves) curve.push_back(l);
            opt.step(w, g, calib_lr_scale(t, o.steps));
            if (!V.empty() && ((t + 1) % 5 == 0 || t + 1 == o.steps)) {
                const double lv = gate_loss(V, d, dg, w, nullptr);
                if (lv < best_val) {
                    best_val = lv;
                    best_w = w;
                }
            }
        }
        if (!V.empty()) w = best_w;
        const double l1 = gate_loss(S, d, dg, w, nullptr);
        for (size_t i = 0; i < per; ++i) {
            p.wq[job * per + i] = (float) w[i];
            p.wk[job * per + i] = (float) w[per + i];
        }
        p.initial_loss[job] = (float) l0;
        p.final_loss[job] = (float) l1;
        p.val_loss[job] = (float) best_val;
        if (o.keep_curves) p.curves[job] = std::move(curve);
        const int n = ++done;
        if (prog) prog->report((double) n / n_jobs, "gate layer " + std::to_string(layers[li]) + " head " + std::to_string(h));
    }
    if (prog && prog->cancelled()) throw job_cancelled();
    return p;
}

// ---- file ----

void gate_save(const std::string & path, const gate_params & p) {
    const int64_t nl = (int64_t) p.layers.size();
    using st_meta::f32;
    const std::vector<st_write_tensor> t = {
        f32("wq", {nl, p.n_head, p.head_dim, p.d_g}, p.wq), f32("wk", {nl, p.n_head, p.head_dim, p.d_g}, p.wk),
        f32("initial_loss", {nl, p.n_head}, p.initial_loss), f32("final_loss", {nl, p.n_head}, p.final_loss),
        f32("val_loss", {nl, p.n_head}, p.val_loss)};
    std::map<std::string, std::string> md;
    st_meta::put_trained(md, p);
    md["attnlab.kind"] = "learned_gate";
    md["block"] = std::to_string(p.block);
    md["d_g"] = std::to_string(p.d_g);
    md["val_windows"] = std::to_string(p.val_windows);
    safetensors_write(path, t, md);
}

gate_params gate_load(const std::string & path) {
    safetensors_file f = safetensors_file::open(path);
    gate_params p;
    st_meta::read_trained(f, "learned_gate", 1, p);
    p.block = (int) st_meta::integer(f, "block", 16, 128);
    if (!block_size_valid(p.block)) throw input_error(path, "block", "not one of 16, 32, 64, 128");
    p.d_g = (int) st_meta::integer(f, "d_g", 1, 1024);
    p.val_windows = (int) st_meta::integer(f, "val_windows", 0, p.windows - 1);
    const int64_t nl = (int64_t) p.layers.size();
    p.wq = st_meta::tensor(f, "wq", {nl, p.n_head, p.head_dim, p.d_g});
    p.wk = st_meta::tensor(f, "wk", {nl, p.n_head, p.head_dim, p.d_g});
    p.initial_loss = st_meta::tensor(f, "initial_loss", {nl, p.n_head});
    p.final_loss = st_meta::tensor(f, "final_loss", {nl, p.n_head});
    p.val_loss = st_meta::tensor(f, "val_loss", {nl, p.n_head});
    return p;
}

// ---- selection ----

std::vector<double> gate_probs(const gate_params & p, int li, int h, const head_inputs & in) {
    const int d = p.head_dim, dg = p.d_g, B = p.block, nb = (in.n_tokens + B - 1) / B;
    std::vector<double> qm, km;
    pool_blocks(in, B, qm, km);
    const Eigen::Map<const mat_d> Q(qm.data(), nb, d), K(km.data(), nb, d);
    const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> wq(p.wq_of(li, h), d, dg),
        wk(p.wk_of(li, h), d, dg);
    const mat_d qt = Q * wq.cast<double>(), kt = K * wk.cast<double>();
    mat_d P = (qt * kt.transpose()) * (1.0 / std::sqrt((double) dg));
    softmax_rows(P, in.causal);
    return std::vector<double>(P.data(), P.data() + (size_t) nb * nb);
}

learned_gate_method::learned_gate_method(std::shared_ptr<const gate_params> p, double rho, double tau, std::string spec)
    : p_(std::move(p)), rho_(rho), tau_(tau), spec_(std::move(spec)), fallback_(block_topk_create(rho, p_->block)),
      n_fallback_(std::make_shared<std::atomic<int64_t>>(0)) {}

double learned_gate_method::predictor_flops(int L, int d, bool causal) const {
    const int B = p_->block, nb = (L + B - 1) / B;
    // pooling, the two projections, the gate scores and the softmax (~5/element)
    return 2.0 * L * d + 2.0 * 2.0 * nb * d * p_->d_g + (2.0 * p_->d_g + 5.0) * (double) causal_blocks(L, B, causal);
}

int64_t learned_gate_method::fallbacks() const { return n_fallback_->load(); }

selection learned_gate_method::select(const head_inputs & in) const {
    const int li = p_->layer_index(in.layer);
    if (li < 0 || in.head < 0 || in.head >= p_->n_head || in.head_dim != p_->head_dim) {
        ++*n_fallback_;
        return fallback_->select(in);
    }
    const std::vector<double> P = gate_probs(*p_, li, in.head, in);
    return select_blocks_by_score(in.n_tokens, p_->block, in.causal, P, rho_, tau_);
}

gpu_selector learned_gate_method::gpu_selection() const {
    gpu_selector g;
    if (tau_ > 0.0) return g;
    g.kind = gpu_selector::learned_gate;
    g.block = p_->block;
    g.rho = rho_;
    g.gate = p_.get();
    return g;
}

namespace {

std::unique_ptr<sparse_method> create(const method_args & a) {
    const std::string & file = a.text("params");
    if (file.empty()) {
        throw input_error(a.spec_text, "params", "learned_gate needs a trained gate file (params=FILE, see gate_train)");
    }
    auto p = std::make_shared<gate_params>(gate_load(file));
    if (p->block != a.integer("B")) {
        throw input_error(a.spec_text, "B", "the gate in " + file + " was trained with B=" + std::to_string(p->block));
    }
    return std::make_unique<learned_gate_method>(p, a.real("rho"), a.real("tau"), method_args_spec("learned_gate", a));
}

const method_registrar reg([] {
    method_info e;
    e.name = "learned_gate";
    e.help = "trained per-head gate on pooled blocks (distilled from the true block mass on calibration text); "
             "blocks with P >= tau, or the top rho, plus the diagonal and block 0";
    e.params = {param_real("rho", "0.2", 0.0, 1.0, true, "kept fraction of each query block's causal blocks (when tau = 0)"),
                param_real("tau", "0", 0.0, 1.0, false, "gate probability threshold; 0 selects by rho"), param_block(),
                param_text("params", "", "trained gate file (safetensors)")};
    e.create = create;
    e.uses_qk = true;
    e.file_keys = {"params"};
    e.gpu = gpu_selector::learned_gate;
    e.cost = method_cost::block_density;
    e.family = "learned";
    e.order = 100;
    return e;
}());

} // namespace

} // namespace attnlab
