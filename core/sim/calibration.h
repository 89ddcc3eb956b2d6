#pragma once
// Calibration of the simulator from measured kernels: bench/results/*.json.
// Two layouts are read:
//  - bench/gpu/bench.py's: {"meta": {"device", "B", "H", "block", ...},
//    "rows": [{"L", "D", "causal", "density", "method", "time_ms", "tflops", ...}]}
//    (rows with a null density or tflops, such as the gate timing, are skipped);
//  - plain rows {device, L, head_dim, causal, density, kernel, ms, tflops}
//    (optionally batch, heads, block), as an array or {"rows": [...]}.
// A row field wins over the same field in meta.
//
// The work of a row is tflops * ms (the benchmark counts the FLOPs of the
// pairs its kernel computed); without tflops it is 4*head_dim*pairs*batch*heads
// from the simulator's block plan. Efficiency = work / time / dense peak.
// Each kernel (by name) gets its own efficiency-by-density curve; the
// simulator uses the best dense kernel for dense attention and the best
// sparse kernel for sparse methods (or the ones named).
#include <string>
#include <utility>
#include <vector>

#include "sim/presets.h"

namespace attnlab {

struct bench_row {
    std::string file;
    int index = 0;          // row index in the file (rows array)
    std::string device, kernel;
    int64_t L = 0;
    int head_dim = 0;
    bool causal = true;
    double density = 1.0;
    double ms = 0.0;
    double tflops = 0.0;
    int batch = 0, heads = 0, block = 64;  // 0: not given
};

// Reads one file, or every *.json of a folder (sorted). A missing path throws
// input_error naming it and what writes it; an empty folder too. `skipped`
// (optional) counts rows without a density or a time/throughput.
std::vector<bench_row> bench_rows_read(const std::string & path, int * skipped = nullptr);
std::vector<bench_row> bench_rows_parse(const std::string & text, const std::string & file, int * skipped = nullptr);

// Matmul FLOPs the row's kernel performed (see above).
double bench_row_work(const bench_row & r);

// Does a device name belong to this hardware preset (case-insensitive substring of device_match)?
bool bench_device_matches(const hw_preset & hw, const std::string & device);

// One density of one kernel: time_ms(work) = overhead_ms + work / (efficiency * peak).
// The affine form separates what grows with the work (the tiles) from what a
// launch costs whatever its size (launch latency, the last partial wave): a
// single efficiency per density, as first fitted, made short lengths look
// slow and long lengths fast (4k rows pulled the 32k prediction up by 50%+).
struct kernel_rate_point {
    double density = 1.0;
    double efficiency = 0.0;    // attained / dense peak once the work is large
    double overhead_ms = 0.0;   // fixed time per launch, >= 0
    int rows = 0;               // measured rows behind the fit
    int lengths = 0;            // distinct L among them (1: no overhead fitted)
};

struct sim_calibration {
    std::string hw;
    std::string source;                            // files the points come from
    std::string dense_kernel, sparse_kernel;       // the kernels behind the points ("" if none)
    int head_dim = 0;
    bool causal = true;
    std::vector<kernel_rate_point> points;         // sorted by density

    // Linear in density between measured points, clamped outside them.
    double efficiency(double density) const;
    double overhead_ms(double density) const;
    // Predicted time of a launch doing `work` matmul FLOPs at this density.
    double time_ms(double density, double work, double peak_flops) const;
};

// The fitted rate of one kernel (exact name) on this hardware per density, at
// head_dim (the nearest measured one if absent) and causality; rows of length
// exclude_L are left out. Per density: weighted least squares of
// ms = overhead + work * slope over the rows' lengths, minimising relative
// error (each row counts alike, whatever its size); with one length, or a
// negative intercept, the line goes through the origin. Empty when nothing matches.
std::vector<kernel_rate_point> kernel_rate_curve(const std::vector<bench_row> & rows, const hw_preset & hw,
                                                 const std::string & kernel, int head_dim, bool causal,
                                                 int64_t exclude_L = -1);

// The simulator's calibration: the dense kernel's point at density 1 and the
// sparse kernel's points below it. dense_kernel / sparse_kernel are name
// substrings; empty picks, among kernels with "dense" in the name (dense) or
// with rows below density 1 (sparse), the one with the highest median
// efficiency. Throws input_error when no row of this hardware matches.
sim_calibration calibration_fit(const std::vector<bench_row> & rows, const hw_preset & hw, int head_dim, bool causal = true,
                                const std::string & dense_kernel = "", const std::string & sparse_kernel = "");

struct calib_point {
    bench_row row;
    double work = 0.0;
    double measured_eff = 0.0;
    double predicted_ms = 0.0;     // from the row's own kernel curve fitted on the other lengths
    double datasheet_ms = 0.0;     // uncalibrated: work / (peak * eff_compute)
    double error = 0.0;            // (predicted - measured) / measured
    double datasheet_error = 0.0;
    bool leave_one_out = false;    // false: no other length at this density, fitted in-sample
};

// Prediction vs measurement for every row of this hardware.
std::vector<calib_point> calibration_check(const std::vector<bench_row> & rows, const hw_preset & hw, double eff_compute = 1.0);

} // namespace attnlab
