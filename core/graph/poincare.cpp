#include "graph/poincare.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <stdexcept>

#include "graph/attention_graph.h"
#include "base/error.h"

#ifdef ATTNLAB_HAVE_BOOST_GRAPH
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/dijkstra_shortest_paths.hpp>
#endif

namespace attnlab {

namespace {

constexpr double k_max_norm = 1.0 - 1e-6;  // stay strictly inside the disk

double arcosh1p(double t) { return std::log1p(t + std::sqrt(t * (t + 2.0))); } // arcosh(1 + t), accurate for small t

void project(double * x) {
    const double r = std::sqrt(x[0] * x[0] + x[1] * x[1]);
    if (r > k_max_norm) {
        x[0] *= k_max_norm / r;
        x[1] *= k_max_norm / r;
    }
}

double stress(const std::vector<double> & xy, const std::vector<double> & t, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            const double e = (poincare_dist2(&xy[2 * i], &xy[2 * j]) - t[size_t(i) * n + j]) / t[size_t(i) * n + j];
            s += e * e;
        }
    return s;
}

} // namespace

double poincare_dist2(const double * x, const double * y) {
    const double dx = x[0] - y[0], dy = x[1] - y[1];
    const double ax = 1.0 - (x[0] * x[0] + x[1] * x[1]);
    const double ay = 1.0 - (y[0] * y[0] + y[1] * y[1]);
    return arcosh1p(2.0 * (dx * dx + dy * dy) / (ax * ay));
}

void poincare_distortion(const std::vector<double> & xy, const std::vector<double> & D, int n, double scale, double * mean,
                         double * worst) {
    double sum = 0.0, lo = std::numeric_limits<double>::infinity(), hi = 0.0;
    int64_t pairs = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            const double ratio = poincare_dist2(&xy[2 * i], &xy[2 * j]) / (scale * D[size_t(i) * n + j]);
            sum += std::fabs(ratio - 1.0);
            lo = std::min(lo, ratio);
            hi = std::max(hi, ratio);
            pairs++;
        }
    if (mean) *mean = pairs ? sum / double(pairs) : 0.0;
    if (worst) *worst = pairs ? (lo > 0.0 ? hi / lo : std::numeric_limits<double>::infinity()) : 1.0;
}

poincare_result poincare_embed(const std::vector<double> & D, int n, const poincare_options & opt, job_progress * job) {
    if (n < 2 || n > k_poincare_max_points) {
        throw input_error("embedding", "points", std::to_string(n) + " is outside 2.." + std::to_string(k_poincare_max_points));
    }
    if (D.size() != size_t(n) * n) throw input_error("embedding", "distances", "matrix is not n x n");
    if (!(opt.scale > 0.0) || !(opt.lr > 0.0) || opt.iters < 0) throw input_error("embedding", "options", "scale and lr must be > 0, iters >= 0");
    std::vector<double> t(size_t(n) * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            const double d = D[size_t(i) * n + j];
            if (i != j && !(d > 0.0 && std::isfinite(d))) {
                throw input_error("embedding", "distances", "D[" + std::to_string(i) + "][" + std::to_string(j) + "] must be positive and finite");
            }
            if (std::fabs(d - D[size_t(j) * n + i]) > 1e-9 * std::max(1.0, d)) throw input_error("embedding", "distances", "matrix is not symmetric");
            t[size_t(i) * n + j] = opt.scale * d;
        }

    poincare_result r;
    r.n = n;
    r.scale = opt.scale;
    r.xy.resize(size_t(2) * n);
    uint64_t s = opt.seed * 0x9e3779b97f4a7c15ULL + 1;
    for (double & v : r.xy) {  // small random start near the origin (xorshift)
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v = (double(s >> 11) / 9007199254740992.0 - 0.5) * 0.2;
    }
    double loss = stress(r.xy, t, n);
    double lr = opt.lr;
    std::vector<double> grad(size_t(2) * n), trial(size_t(2) * n);
    auto record = [&] {
        double mean = 0.0;
        poincare_distortion(r.xy, D, n, opt.scale, &mean, nullptr);
        r.loss_history.push_back(loss);
        r.distortion_history.push_back(mean);
    };
    record();
    for (int it = 0; it < opt.iters; it++) {
        if ((it & 15) == 0) job_step(job, double(it) / std::max(1, opt.iters), "poincare embedding");
        std::fill(grad.begin(), grad.end(), 0.0);
        for (int i = 0; i < n; i++) {
            const double * u = &r.xy[2 * i];
            const double au = 1.0 - (u[0] * u[0] + u[1] * u[1]);
            for (int j = 0; j < n; j++) {
                if (j == i) continue;
                const double * v = &r.xy[2 * j];
                const double av = 1.0 - (v[0] * v[0] + v[1] * v[1]);
                const double dx = u[0] - v[0], dy = u[1] - v[1];
                const double s2 = dx * dx + dy * dy;
                const double delta = 2.0 * s2 / (au * av);
                const double d = arcosh1p(delta);
                const double tij = t[size_t(i) * n + j];
                // d(loss)/d(d) for this pair; the pair's term appears once in
                // the loss, and this loop visits it from both ends
                const double dl = 2.0 * (d - tij) / (tij * tij);
                const double dd = 1.0 / std::sqrt(std::max(delta * (delta + 2.0), 1e-300)); // arcosh'(1 + delta)
                // d(delta)/du = 4 (u - v) / (au av) + 4 s2 u / (au^2 av)
                const double c1 = 4.0 / (au * av), c2 = 4.0 * s2 / (au * au * av);
                grad[2 * i] += dl * dd * (c1 * dx + c2 * u[0]);
                grad[2 * i + 1] += dl * dd * (c1 * dy + c2 * u[1]);
            }
        }
        // Riemannian step: the metric's conformal factor, then retract
        for (;;) {
            for (int i = 0; i < n; i++) {
                const double * u = &r.xy[2 * i];
                const double au = 1.0 - (u[0] * u[0] + u[1] * u[1]);
                const double f = au * au / 4.0;
                double gx = f * grad[2 * i], gy = f * grad[2 * i + 1];
                const double gn = std::sqrt(gx * gx + gy * gy);
                if (gn * lr > 0.5) {  // keep one step inside a half-unit move
                    gx *= 0.5 / (gn * lr);
                    gy *= 0.5 / (gn * lr);
                }
                trial[2 * i] = u[0] - lr * gx;
                trial[2 * i + 1] = u[1] - lr * gy;
                project(&trial[2 * i]);
            }
            const double tl = stress(trial, t, n);
            if (tl <= loss) {
                r.xy.swap(trial);
                loss = tl;
                lr = std::min(lr * 1.1, opt.lr * 10.0);
                break;
            }
            lr *= 0.5;
            if (lr < 1e-12) break;
        }
        r.iters_run = it + 1;
        if (opt.history_every > 0 && (it + 1) % opt.history_every == 0) record();
        if (lr < 1e-12) break;
    }
    r.loss = loss;
    poincare_distortion(r.xy, D, n, opt.scale, &r.mean_distortion, &r.worst_distortion);
    job_step(job, 1.0, "poincare embedding");
    return r;
}

#ifdef ATTNLAB_HAVE_BOOST_GRAPH
std::vector<double> graph_distances(const std::vector<double> & w, int n, double min_weight) {
    using wgraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS, boost::no_property,
                                         boost::property<boost::edge_weight_t, double>>;
    wgraph g(n);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            const double x = std::max(w[size_t(i) * n + j], w[size_t(j) * n + i]);
            if (x >= min_weight && x > 0.0) boost::add_edge(i, j, std::max(-std::log(std::min(x, 1.0)), 1e-9), g);
        }
    std::vector<double> D(size_t(n) * n);
    std::vector<double> dist(n);
    double far = 0.0;
    for (int s = 0; s < n; s++) {
        boost::dijkstra_shortest_paths(g, boost::vertex(s, g), boost::distance_map(boost::make_iterator_property_map(dist.begin(), boost::get(boost::vertex_index, g))));
        for (int j = 0; j < n; j++) {
            D[size_t(s) * n + j] = dist[j];
            if (dist[j] < std::numeric_limits<double>::max() / 2) far = std::max(far, dist[j]);
        }
    }
    for (double & d : D)
        if (!(d < std::numeric_limits<double>::max() / 2)) d = far > 0.0 ? 2.0 * far : 1.0;
    return D;
}

#else
std::vector<double> graph_distances(const std::vector<double> &, int, double) {
    throw std::runtime_error("graph distances need Boost.Graph (libboost-graph-dev), which this build lacks");
}
#endif

} // namespace attnlab
