#include "graph/hyperbolic_head.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/job.h"
#include "data/capture.h"
#include "graph/attention_graph.h"

namespace attnlab {

namespace {

// Row t of head h's queries and keys (GQA resolved).
struct head_rows {
    const float * q;
    const float * k;
    int64_t q_stride, k_stride;
    int d;
    head_rows(const attention_layer_io & io, int h)
        : q(io.q + int64_t(h) * io.head_dim), k(io.k + int64_t(io.kv_head_of(h)) * io.head_dim),
          q_stride(int64_t(io.n_head) * io.head_dim), k_stride(int64_t(io.n_head_kv) * io.head_dim), d(io.head_dim) {}
    const float * qt(int t) const { return q + t * q_stride; }
    const float * kt(int t) const { return k + t * k_stride; }
};

// The first n queries and keys mapped into the ball, with their factors 1 - c|x|^2.
struct ball_points {
    int n = 0, d = 0;
    double c = 1.0;
    std::vector<double> qh, kh, lq, lk;
    const double * q(int t) const { return &qh[size_t(t) * d]; }
    const double * k(int t) const { return &kh[size_t(t) * d]; }
    double dist(const double * u, double lu, const double * v, double lv) const {
        double s = 0;
        for (int i = 0; i < d; ++i) s += (u[i] - v[i]) * (u[i] - v[i]);
        return poincare_distance_from_parts(s, lu, lv, c);
    }
};

ball_points ball_map(const head_rows & hr, int n, double c) {
    ball_points b;
    b.n = n;
    b.d = hr.d;
    b.c = c;
    const int d = hr.d;
    b.qh.resize(size_t(n) * d);
    b.kh.resize(size_t(n) * d);
    b.lq.resize(n);
    b.lk.resize(n);
    std::vector<double> x(d);
    auto one = [&](const float * src, double * dst, double & lam) {
        for (int i = 0; i < d; ++i) x[i] = src[i];
        poincare_expmap0(x.data(), d, c, dst);
        double a = 0;
        for (int i = 0; i < d; ++i) a += dst[i] * dst[i];
        lam = 1.0 - c * a;
    };
    for (int t = 0; t < n; ++t) {
        one(hr.qt(t), &b.qh[size_t(t) * d], b.lq[t]);
        one(hr.kt(t), &b.kh[size_t(t) * d], b.lk[t]);
    }
    return b;
}

score_comparison compare_rows(const head_rows & hr, const ball_points & b, float scale, const score_fn & hyp) {
    const int n = b.n, d = hr.d;
    score_comparison r;
    r.n = n;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    r.softmax_w.assign(size_t(n) * n, nan);
    r.hyper_w.assign(size_t(n) * n, nan);
    r.top_softmax.assign(n, 0);
    r.top_hyper.assign(n, 0);
    std::vector<double> ls(n), lh(n);
    double tv = 0;
    for (int i = 0; i < n; ++i) {
        double ms = -HUGE_VAL, mh = -HUGE_VAL;
        for (int j = 0; j <= i; ++j) {
            double dot = 0;
            for (int e = 0; e < d; ++e) dot += double(hr.qt(i)[e]) * hr.kt(j)[e];
            ls[j] = dot * scale;
            lh[j] = -double(hyp.beta) * b.dist(b.q(i), b.lq[i], b.k(j), b.lk[j]) - hyp.gamma;
            ms = std::max(ms, ls[j]);
            mh = std::max(mh, lh[j]);
        }
        double zs = 0, zh = 0;
        for (int j = 0; j <= i; ++j) {
            zs += std::exp(ls[j] - ms);
            zh += std::exp(lh[j] - mh);
        }
        int as = 0, ah = 0;
        double row_tv = 0;
        for (int j = 0; j <= i; ++j) {
            const double ws = std::exp(ls[j] - ms) / zs, wh = std::exp(lh[j] - mh) / zh;
            r.softmax_w[size_t(i) * n + j] = float(ws);
            r.hyper_w[size_t(i) * n + j] = float(wh);
            if (ws > r.softmax_w[size_t(i) * n + as]) as = j;
            if (wh > r.hyper_w[size_t(i) * n + ah]) ah = j;
            row_tv += 0.5 * std::fabs(ws - wh);
        }
        r.top_softmax[i] = as;
        r.top_hyper[i] = ah;
        r.top1_agree += as == ah;
        tv += row_tv;
    }
    r.mean_tv = n ? tv / n : 0;
    return r;
}

std::vector<double> qk_distances(const ball_points & b) {
    const int n = b.n, np = 2 * n;
    std::vector<const double *> pt(np);
    std::vector<double> lam(np);
    for (int t = 0; t < n; ++t) {
        pt[t] = b.q(t);
        lam[t] = b.lq[t];
        pt[n + t] = b.k(t);
        lam[n + t] = b.lk[t];
    }
    std::vector<double> D(size_t(np) * np, 0.0);
    for (int a = 0; a < np; ++a) {
        for (int c = a + 1; c < np; ++c) D[size_t(a) * np + c] = D[size_t(c) * np + a] = b.dist(pt[a], lam[a], pt[c], lam[c]);
    }
    return D;
}

int clamp_tokens(const attention_layer_io & io, int n) { return std::max(0, std::min(n, io.n_tokens)); }

} // namespace

double hyperbolic_auto_c(const attention_layer_io & io, int h, int n) {
    n = clamp_tokens(io, n);
    const head_rows hr(io, h);
    std::vector<double> n2;
    for (int t = 0; t < n; ++t) {
        double a = 0, b = 0;
        for (int i = 0; i < hr.d; ++i) {
            a += double(hr.qt(t)[i]) * hr.qt(t)[i];
            b += double(hr.kt(t)[i]) * hr.kt(t)[i];
        }
        n2.push_back(a);
        n2.push_back(b);
    }
    if (n2.empty()) return 1.0;
    std::nth_element(n2.begin(), n2.begin() + n2.size() / 2, n2.end());
    const double med = n2[n2.size() / 2];
    return med > 0 ? 1.0 / med : 1.0;
}

score_comparison score_compare_hyperbolic(const attention_layer_io & io, int h, int n, const score_fn & hyp) {
    const head_rows hr(io, h);
    return compare_rows(hr, ball_map(hr, clamp_tokens(io, n), hyp.c), io.scale, hyp);
}

std::vector<double> hyperbolic_qk_distances(const attention_layer_io & io, int h, int n, double c) {
    return qk_distances(ball_map(head_rows(io, h), clamp_tokens(io, n), c));
}

head_embedding head_embed_hyperbolic(const qkv_capture & cap, size_t li, int h, const head_embed_options & opt,
                                     job_progress * progress) {
    const attention_layer_io io = capture_layer_io(cap, li);
    const head_rows hr(io, h);
    head_embedding r;
    r.layer = io.layer;
    r.head = h;
    const int n = clamp_tokens(io, opt.n);
    r.n = n;
    job_step(progress, 0.02, "softmax and hyperbolic attention");
    score_fn sf = opt.score;
    if (opt.auto_c) sf.c = float(hyperbolic_auto_c(io, h, n));
    r.c = sf.c;
    const ball_points b = ball_map(hr, n, sf.c);
    r.weights = compare_rows(hr, b, io.scale, sf);

    // Distances to embed.
    std::vector<double> D;
    int np = 0;
    if (opt.mode == head_embed_mode::qk) {
        np = 2 * n;
        D = qk_distances(b);
        for (int k = 0; k < 2; ++k) {
            for (int t = 0; t < n; ++t) {
                r.token.push_back(t);
                r.is_key.push_back(uint8_t(k));
            }
        }
    } else {
        np = n;
        std::vector<double> w(size_t(n) * n, 0.0);
        if (opt.mode == head_embed_mode::graph_head) {
            for (size_t k = 0; k < w.size(); ++k) w[k] = std::isnan(r.weights.softmax_w[k]) ? 0.0 : r.weights.softmax_w[k];
        } else {
            w = attention_graph_from_capture(cap, r.layer, r.layer, n, nullptr).a.at(0);
        }
        r.token.resize(n);
        for (int t = 0; t < n; ++t) r.token[t] = t;
        r.is_key.assign(n, 0);
        job_step(progress, 0.1, "graph distances");
        D = graph_distances(w, n, 1e-4);
    }
    // Coincident points would make the relative stress undefined.
    for (int a = 0; a < np; ++a) {
        for (int c = 0; c < np; ++c) {
            if (a != c) D[size_t(a) * np + c] = std::max(D[size_t(a) * np + c], 1e-6);
        }
    }
    double dmax = 0;
    for (double v : D) dmax = std::max(dmax, v);
    poincare_options po;
    po.iters = opt.iters;
    po.scale = dmax > 0 ? 6.0 / dmax : 1.0;
    job_step(progress, 0.15, "Poincare embedding");
    r.embed = poincare_embed(D, np, po, progress);
    return r;
}

} // namespace attnlab
