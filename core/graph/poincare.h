#pragma once
// Embedding graph distances in the Poincaré disk (curvature -1) for the GUI's
// hyperbolic view: Riemannian gradient descent on the relative stress
//   sum_{i<j} ((d_H(x_i, x_j) - t_ij) / t_ij)^2,   t_ij = scale * D_ij,
// with the Riemannian gradient ((1 - |x|^2)^2 / 4) * Euclidean gradient and a
// projection back inside the disk. A step that raises the loss is undone and
// the rate halved, so the loss never rises.
//
// Distortion reported: mean |d_H / t - 1| over pairs, and the worst-case
// distortion max(d_H / t) / min(d_H / t) (Sala et al. 2018).
#include <cstdint>
#include <vector>

#include "base/job.h"

namespace attnlab {

// d_H(x, y) = arcosh(1 + 2|x - y|^2 / ((1 - |x|^2)(1 - |y|^2))), 2-d points.
double poincare_dist2(const double * x, const double * y);

struct poincare_options {
    int iters = 500;
    double lr = 0.1;
    double scale = 1.0;          // target distance per unit of D
    uint64_t seed = 1;
    int history_every = 10;      // record the distortion every k iterations
};

struct poincare_result {
    int n = 0;
    std::vector<double> xy;      // n x 2
    double scale = 1.0;
    double loss = 0.0;
    double mean_distortion = 0.0;
    double worst_distortion = 0.0;
    std::vector<double> loss_history;        // every history_every iterations, from iteration 0
    std::vector<double> distortion_history;  // mean distortion, same steps
    int iters_run = 0;
};

// Largest point count (the loss is over all pairs).
constexpr int k_poincare_max_points = 1024;

// D: n x n symmetric, positive off the diagonal. Throws input_error otherwise.
poincare_result poincare_embed(const std::vector<double> & D, int n, const poincare_options & opt, job_progress * job = nullptr);

// Mean and worst-case distortion of an embedding against scale * D.
void poincare_distortion(const std::vector<double> & xy, const std::vector<double> & D, int n, double scale, double * mean,
                         double * worst);

// Shortest-path distances between tokens over an n x n weight matrix:
// symmetrised (max of the two directions), edges with weight >= min_weight
// get length -log(weight) (Boost.Graph Dijkstra). Unreachable pairs get twice
// the largest finite distance (so an embedding can still place them).
std::vector<double> graph_distances(const std::vector<double> & w, int n, double min_weight);

} // namespace attnlab
