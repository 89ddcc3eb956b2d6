#pragma once
// layer_adaptive(ρ) (METHODS.md, seed 000; reference: PyramidKV,
// DuoAttention). Per-(layer, head) budgets for block_topk:
//   1. calibrate: on calibration captures, each head's recall curve: the
//      attention-mass recall of block_topk(r) (mean over rows of Σ_kept A_ij,
//      averaged over windows) and its realised block density, for r on a grid;
//   2. allocate: start every head at the lowest grid point, then repeatedly
//      take the upgrade (any higher grid point of one head) with the best
//      recall gain per unit of added block density that still fits the global
//      budget mean_h density_h ≤ ρ, until none fits (greedy on marginal gain;
//      optimal when the curves are concave in equal density steps);
//   3. compare: uniform (one r for every head, the largest whose mean
//      realised density fits ρ) and the seed's schedule (r
//      linear in depth from 0.45 at layer 0 to 0.125 at the last layer, as
//      given and rescaled to the budget), recall and density interpolated
//      linearly on each head's curve.
// The table (JSON, written atomically) feeds the method
// `layer_adaptive:rho=0.2,table=FILE,B=64`: head (l, h) runs block_topk at
// its allotted r; layers missing from the table run block_topk at ρ.
#include <memory>
#include <string>
#include <vector>

#include "io/trace.h"
#include "methods/method.h"
#include "methods/registry_trained.h"

namespace attnlab {

class job_progress;

struct head_curve {
    int layer = 0;
    int head = 0;
    std::vector<double> density;   // realised block density at each grid r
    std::vector<double> recall;    // mass recall at each grid r
};

struct recall_curves {
    int block = 64;
    int n_layer = 0;               // layers of the model (for the seed schedule)
    int n_head = 0;
    std::vector<int> layers;       // calibrated layers, ascending
    std::vector<double> grid;      // block_topk rho values, ascending
    std::vector<head_curve> heads; // layer-major, n_head per layer
    trained_provenance prov;
};

// Calibration captures only (check_calibration_set). Grid values in (0, 1],
// sorted and de-duplicated; progress per layer; cancel throws job_cancelled.
recall_curves layer_adaptive_calibrate(const std::vector<const qkv_capture *> & calib, std::vector<double> grid, int block,
                                       job_progress * progress = nullptr);

struct head_allocation {
    std::vector<double> rho;       // per head, curves order
    std::vector<double> density;
    std::vector<double> recall;
    double mean_density = 0.0;
    double mean_recall = 0.0;
};

// Point of a curve at any r in [grid.front(), grid.back()] (clamped), linear.
double curve_at(const std::vector<double> & grid, const std::vector<double> & y, double r);

head_allocation allocate_greedy(const recall_curves & c, double budget);
head_allocation allocate_uniform(const recall_curves & c, double budget);
// scale_to_budget: multiply the schedule by the factor (bisection) that
// brings its mean density to the budget.
head_allocation allocate_seed_schedule(const recall_curves & c, double budget, bool scale_to_budget);

struct layer_adaptive_table {
    double rho = 0.2;              // the global budget
    int block = 64;
    int n_head = 0;
    std::vector<int> layers;
    std::vector<double> head_rho;  // [layers][n_head] block_topk rho
    head_allocation greedy, uniform, seed, seed_scaled;
    recall_curves curves;
    trained_provenance prov;

    double rho_of(int layer, int head) const;   // rho when absent
};

layer_adaptive_table layer_adaptive_build(const recall_curves & c, double budget);
void layer_adaptive_save(const std::string & path, const layer_adaptive_table & t);
// input_error(path, field, ...) for anything missing or malformed.
layer_adaptive_table layer_adaptive_load(const std::string & path);

class layer_adaptive_method : public sparse_method {
public:
    layer_adaptive_method(std::shared_ptr<const layer_adaptive_table> t, std::string spec);
    std::string name() const override { return "layer_adaptive"; }
    std::string spec() const override { return spec_; }
    double predictor_flops(int L, int d, bool causal) const override;
    selection select(const head_inputs & in) const override;
    const trained_provenance * provenance() const override { return &t_->prov; }
    const layer_adaptive_table & table() const { return *t_; }

private:
    std::shared_ptr<const layer_adaptive_table> t_;
    std::string spec_;
    std::vector<std::unique_ptr<sparse_method>> per_head_;   // [layers][n_head]
    std::unique_ptr<sparse_method> fallback_;
};

} // namespace attnlab
