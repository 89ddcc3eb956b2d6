// asa_router: a token-level low-rank + positional router, fitted in two
// phases on calibration captures (see asa_router.h).
#include "methods/asa_router.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include <Eigen/Core>

#include "base/error.h"
#include "io/safetensors.h"
#include "base/job.h"
#include "methods/train/adam.h"
#include "methods/train/calib.h"
#include "methods/train/st_meta.h"

namespace attnlab {

using mat_d = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

int router_bucket(int64_t delta) {
    if (delta < 4) return (int) std::max<int64_t>(0, delta);
    const int b = 4 + (int) std::floor(2.0 * std::log2((double) delta / 4.0));
    return std::min(k_router_buckets - 1, b);
}

namespace {

// One window of one head: Q (sampled rows), K, and those rows' dense softmax.
struct router_sample {
    int L = 0;
    bool causal = true;
    std::vector<int> rows;
    mat_d q, k, A;      // q: rows x d (unscaled), k: L x d, A: rows x L
};

// Parameter vector: [U_q (d*r) | U_k (d*r) | prior (34) | sink (1)].
struct router_view {
    int d, r;
    size_t n() const { return 2 * (size_t) d * r + k_router_buckets + 1; }
};

double router_loss(const std::vector<router_sample> & S, const router_view & v, const std::vector<double> & w,
                   std::vector<double> * grad) {
    const int d = v.d, r = v.r;
    Eigen::Map<const mat_d> Uq(w.data(), d, r), Uk(w.data() + (size_t) d * r, d, r);
    const double * prior = w.data() + 2 * (size_t) d * r;
    const double sink = prior[k_router_buckets];
    int64_t n_rows = 0;
    for (const auto & s : S) n_rows += (int64_t) s.rows.size();
    n_rows = std::max<int64_t>(1, n_rows);
    mat_d gUq = mat_d::Zero(d, r), gUk = mat_d::Zero(d, r);
    std::vector<double> gp(k_router_buckets + 1, 0.0);
    double loss = 0.0;
    for (const auto & s : S) {
        const mat_d a = s.q * Uq, b = s.k * Uk;
        mat_d z = a * b.transpose();
        mat_d G = mat_d::Zero(z.rows(), z.cols());
        for (int t = 0; t < (int) s.rows.size(); ++t) {
            const int i = s.rows[t], n = s.causal ? i + 1 : s.L;
            double mx = -HUGE_VAL;
            for (int j = 0; j < n; ++j) {
                z(t, j) += prior[router_bucket(std::abs(i - j))] + (j == 0 ? sink : 0.0);
                mx = std::max(mx, z(t, j));
            }
            double sum = 0.0;
            for (int j = 0; j < n; ++j) sum += std::exp(z(t, j) - mx);
            const double lse = mx + std::log(sum);
            for (int j = 0; j < n; ++j) {
                const double p = std::exp(z(t, j) - lse), A = s.A(t, j);
                if (A > 0.0) loss += A * (std::log(A) - (z(t, j) - lse));
                const double g = (p - A) / n_rows;
                G(t, j) = g;
                gp[router_bucket(std::abs(i - j))] += g;
                if (j == 0) gp[k_router_buckets] += g;
            }
        }
        if (grad) {
            gUq.noalias() += s.q.transpose() * (G * b);
            gUk.noalias() += s.k.transpose() * (G.transpose() * a);
        }
    }
    if (grad) {
        grad->assign(v.n(), 0.0);
        Eigen::Map<mat_d>(grad->data(), d, r) = gUq;
        Eigen::Map<mat_d>(grad->data() + (size_t) d * r, d, r) = gUk;
        std::copy(gp.begin(), gp.end(), grad->begin() + 2 * (size_t) d * r);
    }
    return loss / n_rows;
}

} // namespace

router_params router_train(const std::vector<const qkv_capture *> & calib, const router_train_options & o) {
    const trace_info & info = check_calibration_set(calib, "asa_router training");
    if (o.rank < 1 || o.rank > 1024) throw input_error("asa_router training", "rank", "out of range [1, 1024]");
    if (o.steps < 0) throw input_error("asa_router training", "steps", "negative");
    if (o.rows < 1) throw input_error("asa_router training", "rows", "need at least one row");
    std::vector<size_t> cap_index;
    const std::vector<int> layers = calib_layers(info, o.layers, cap_index);
    router_params p;
    p.rank = o.rank;
    p.head_dim = info.head_dim;
    p.n_head = info.n_head;
    p.steps = o.steps;
    p.rows = o.rows;
    p.lr = o.lr;
    p.seed = o.seed;
    p.ctx = info.n_tokens();
    p.windows = (int) calib.size();
    p.layers = layers;
    p.prov = calib_provenance(info, "asa_router");
    const int d = info.head_dim, r = o.rank, n_head = info.n_head;
    const int n_jobs = (int) layers.size() * n_head;
    const size_t per = (size_t) d * r;
    p.uq.assign(n_jobs * per, 0.0f);
    p.uk = p.uq;
    p.prior.assign((size_t) n_jobs * k_router_buckets, 0.0f);
    p.sink.assign(n_jobs, 0.0f);
    p.initial_loss.assign(n_jobs, 0.0f);
    p.final_loss = p.initial_loss;
    std::atomic<int> done{0};
    job_progress * prog = o.progress;
    job_step(prog, 0.0, "training routers");
#pragma omp parallel for schedule(dynamic, 1)
    for (int job = 0; job < n_jobs; ++job) {
        if (prog && prog->cancelled()) continue;
        const int li = job / n_head, h = job % n_head, layer = layers[li];
        // Phase 1: per-bucket mean logit and the sink's excess, over all pairs.
        std::vector<double> bsum(k_router_buckets, 0.0), bcnt(k_router_buckets, 0.0);
        double s0 = 0.0, c0 = 0.0;
        std::vector<router_sample> S;
        for (size_t wi = 0; wi < calib.size(); ++wi) {
            const head_inputs in = capture_head_of(*calib[wi], cap_index[li], h).in;
            const int L = in.n_tokens;
            for (int i = 0; i < L; ++i) {
                const float * q = in.q + i * in.q_stride;
                for (int j = 0; j <= (in.causal ? i : L - 1); ++j) {
                    const float * k = in.k + j * in.k_stride;
                    double dot = 0.0;
                    for (int x = 0; x < d; ++x) dot += (double) q[x] * k[x];
                    const double z = dot * in.scale;
                    const int b = router_bucket(std::abs(i - j));
                    if (j == 0) {
                        s0 += z;
                        c0 += 1;
                    } else {
                        bsum[b] += z;
                        bcnt[b] += 1;
                    }
                }
            }
            // Phase 2 data: a fixed, seeded sample of rows (all when L is small).
            router_sample s;
            s.L = L;
            s.causal = in.causal;
            if (L <= o.rows) {
                for (int i = 0; i < L; ++i) s.rows.push_back(i);
            } else {
                for (int t = 0; t < o.rows; ++t) {
                    // stratified: one row drawn in each of `rows` equal strata
                    const double u = mix_uniform(mix_hash(o.seed, layer, h, wi, t));
                    s.rows.push_back(std::min(L - 1, (int) ((t + u) * L / o.rows)));
                }
            }
            const std::vector<double> A = dense_softmax_rows(in);
            s.q.resize(s.rows.size(), d);
            s.A.resize(s.rows.size(), L);
            for (size_t t = 0; t < s.rows.size(); ++t) {
                for (int x = 0; x < d; ++x) s.q(t, x) = in.q[s.rows[t] * in.q_stride + x];
                for (int j = 0; j < L; ++j) s.A(t, j) = A[(size_t) s.rows[t] * L + j];
            }
            s.k.resize(L, d);
            for (int j = 0; j < L; ++j)
                for (int x = 0; x < d; ++x) s.k(j, x) = in.k[j * in.k_stride + x];
            S.push_back(std::move(s));
        }
        router_view v{d, r};
        std::vector<double> w(v.n(), 0.0);
        double * prior = w.data() + 2 * per;
        double last = 0.0;
        for (int b = 0; b < k_router_buckets; ++b) {
            // empty buckets (distances longer than any window) copy their neighbour
            prior[b] = bcnt[b] > 0 ? bsum[b] / bcnt[b] : last;
            last = prior[b];
        }
        // The sink's excess over the mean prior its pairs would get.
        double sink_prior = 0.0;
        for (size_t wi = 0; wi < calib.size(); ++wi) {
            const int L = calib[wi]->info.n_tokens();
            for (int i = 0; i < L; ++i) sink_prior += prior[router_bucket(i)];
        }
        prior[k_router_buckets] = c0 > 0 ? (s0 - sink_prior) / c0 : 0.0;
        // E[U Uᵀ] = r·sd²·I = s·I with s = 1/sqrt(d)
        const double sd = std::sqrt(1.0 / std::sqrt((double) d) / r);
        for (size_t x = 0; x < per; ++x) w[x] = w[per + x] = sd * mix_normal(o.seed, layer, h, 7, x);
        // Phase 2.
        adam opt(w.size(), adam_options{o.lr});
        std::vector<double> g;
        double l0 = router_loss(S, v, w, nullptr);
        for (int t = 0; t < o.steps; ++t) {
            if (prog && prog->cancelled()) break;
            router_loss(S, v, w, &g);
            opt.step(w, g, calib_lr_scale(t, o.steps));
        }
        const double l1 = router_loss(S, v, w, nullptr);
        for (size_t x = 0; x < per; ++x) {
            p.uq[job * per + x] = (float) w[x];
            p.uk[job * per + x] = (float) w[per + x];
        }
        for (int b = 0; b < k_router_buckets; ++b) p.prior[(size_t) job * k_router_buckets + b] = (float) prior[b];
        p.sink[job] = (float) prior[k_router_buckets];
        p.initial_loss[job] = (float) l0;
        p.final_loss[job] = (float) l1;
        const int n = ++done;
        if (prog) prog->report((double) n / n_jobs, "router layer " + std::to_string(layer) + " head " + std::to_string(h));
    }
    if (prog && prog->cancelled()) throw job_cancelled();
    return p;
}

void router_save(const std::string & path, const router_params & p) {
    const int64_t nl = (int64_t) p.layers.size();
    using namespace st_meta;
    std::vector<st_write_tensor> t = {
        f32("uq", {nl, p.n_head, p.head_dim, p.rank}, p.uq),      f32("uk", {nl, p.n_head, p.head_dim, p.rank}, p.uk),
        f32("prior", {nl, p.n_head, k_router_buckets}, p.prior), f32("sink", {nl, p.n_head}, p.sink),
        f32("initial_loss", {nl, p.n_head}, p.initial_loss),      f32("final_loss", {nl, p.n_head}, p.final_loss)};
    std::map<std::string, std::string> md;
    put_trained(md, p);
    md["attnlab.kind"] = "asa_router";
    md["rank"] = std::to_string(p.rank);
    md["n_buckets"] = std::to_string(k_router_buckets);
    md["rows"] = std::to_string(p.rows);
    safetensors_write(path, t, md);
}

router_params router_load(const std::string & path) {
    safetensors_file f = safetensors_file::open(path);
    using namespace st_meta;
    router_params p;
    read_trained(f, "asa_router", 0, p);
    p.rank = (int) integer(f, "rank", 1, 1024);
    integer(f, "n_buckets", k_router_buckets, k_router_buckets);
    p.rows = (int) integer(f, "rows", 1, 1 << 30);
    const int64_t nl = (int64_t) p.layers.size();
    p.uq = tensor(f, "uq", {nl, p.n_head, p.head_dim, p.rank});
    p.uk = tensor(f, "uk", {nl, p.n_head, p.head_dim, p.rank});
    p.prior = tensor(f, "prior", {nl, p.n_head, k_router_buckets});
    p.sink = tensor(f, "sink", {nl, p.n_head});
    p.initial_loss = tensor(f, "initial_loss", {nl, p.n_head});
    p.final_loss = tensor(f, "final_loss", {nl, p.n_head});
    return p;
}

std::vector<double> router_logits(const router_params & p, int li, int h, const head_inputs & in) {
    const int L = in.n_tokens, d = p.head_dim, r = p.rank;
    const size_t job = (size_t) li * p.n_head + h, per = (size_t) d * r;
    using mat_f = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const mat_f> Uq(p.uq.data() + job * per, d, r), Uk(p.uk.data() + job * per, d, r);
    mat_d a(L, r), b(L, r);
    {
        mat_d q(L, d), k(L, d);
        for (int t = 0; t < L; ++t)
            for (int x = 0; x < d; ++x) {
                q(t, x) = in.q[t * in.q_stride + x];
                k(t, x) = in.k[t * in.k_stride + x];
            }
        a = q * Uq.cast<double>();
        b = k * Uk.cast<double>();
    }
    std::vector<double> z((size_t) L * L, -HUGE_VAL);
    Eigen::Map<mat_d> Z(z.data(), L, L);
    Z.noalias() = a * b.transpose();
    const float * prior = p.prior.data() + job * k_router_buckets;
    for (int i = 0; i < L; ++i) {
        const int n = in.causal ? i + 1 : L;
        for (int j = 0; j < n; ++j) Z(i, j) += prior[router_bucket(std::abs(i - j))] + (j == 0 ? p.sink[job] : 0.0f);
        for (int j = n; j < L; ++j) Z(i, j) = -HUGE_VAL;
    }
    return z;
}

selection router_mask(const std::vector<double> & z, int L, int B, bool causal, double theta, double rho) {
    std::vector<std::vector<int32_t>> rows(L);
    std::vector<double> row;
    for (int i = 0; i < L; ++i) {
        const int n = causal ? i + 1 : L;
        const double * zi = &z[(size_t) i * L];
        if (theta > 0.0) {
            double mx = -HUGE_VAL;
            for (int j = 0; j < n; ++j) mx = std::max(mx, zi[j]);
            double sum = 0.0;
            for (int j = 0; j < n; ++j) sum += std::exp(zi[j] - mx);
            for (int j = 0; j < n; ++j) {
                if (j == i || std::exp(zi[j] - mx) / sum >= theta) rows[i].push_back(j);
            }
        } else {
            row.assign(zi, zi + n);
            if (i < n) row[i] = HUGE_VAL;   // the diagonal counts toward the budget
            topk_indices(row.data(), n, oracle_row_budget(rho, n), rows[i]);
        }
    }
    return selection_from_rows(L, B, causal, rows);
}

asa_router_method::asa_router_method(std::shared_ptr<const router_params> p, double theta, double rho, int B, std::string spec)
    : p_(std::move(p)), theta_(theta), rho_(rho), B_(B), spec_(std::move(spec)) {}

double asa_router_method::predictor_flops(int L, int d, bool causal) const {
    // projections, low-rank scores, prior lookup and the row softmax
    return 4.0 * L * d * p_->rank + (2.0 * p_->rank + 6.0) * (double) causal_pairs(L, causal);
}

selection asa_router_method::select(const head_inputs & in) const {
    const int li = p_->layer_index(in.layer);
    if (li >= 0 && in.head >= 0 && in.head < p_->n_head && in.head_dim == p_->head_dim) {
        return router_mask(router_logits(*p_, li, in.head, in), in.n_tokens, B_, in.causal, theta_, rho_);
    }
    const int L = in.n_tokens;
    std::vector<double> z((size_t) L * L, -HUGE_VAL);
    for (int i = 0; i < L; ++i)
        for (int j = 0; j <= (in.causal ? i : L - 1); ++j) {
            double dot = 0.0;
            for (int x = 0; x < in.head_dim; ++x) dot += (double) in.q[i * in.q_stride + x] * in.k[j * in.k_stride + x];
            z[(size_t) i * L + j] = dot * in.scale;
        }
    return router_mask(z, L, B_, in.causal, theta_, rho_);
}

namespace {

std::unique_ptr<sparse_method> create(const method_args & a) {
    const std::string & file = a.text("params");
    if (file.empty()) throw input_error(a.spec_text, "params", "asa_router needs a trained router file (params=FILE)");
    auto p = std::make_shared<router_params>(router_load(file));
    return std::make_unique<asa_router_method>(p, a.real("theta"), a.real("rho"), a.integer("B"), method_args_spec("asa_router", a));
}

const method_registrar reg([] {
    method_info e;
    e.name = "asa_router";
    e.help = "token-level router: rank-r maps + positional prior + sink, distilled on calibration text; keys with "
             "router probability >= theta, or the top rho, plus the diagonal";
    e.params = {param_real("theta", "0", 0.0, 1.0, false, "router probability threshold; 0 selects by rho"),
                param_real("rho", "0.2", 0.0, 1.0, true, "kept fraction of each row's causal keys (when theta = 0)"),
                param_block(), param_text("params", "", "trained router file (safetensors)")};
    e.create = create;
    e.grain = method_info::token;
    e.uses_qk = true;
    e.file_keys = {"params"};
    e.order = 110;
    return e;
}());

} // namespace

} // namespace attnlab
