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

struct sim_calibration {
    std::string hw;
    std::string source;                            // files the points come from
    std::string dense_kernel, sparse_kernel;       // the kernels behind the points ("" if none)
    int head_dim = 0;
    bool causal = true;
    std::vector<std::pair<double, double>> points; // (block density, efficiency = attained / dense peak), sorted
    std::vector<int> n_rows;                       // rows behind each point

    // Linear in density between measured points, clamped outside them.
    double efficiency(double density) const;
};

// Median efficiency per density of one kernel (exact name) on this hardware,
// at head_dim (the nearest measured one if absent) and causality; rows of
// length exclude_L are left out. Empty when nothing matches.
std::vector<std::pair<double, double>> kernel_efficiency_curve(const std::vector<bench_row> & rows, const hw_preset & hw,
                                                               const std::string & kernel, int head_dim, bool causal,
                                                               int64_t exclude_L = -1, std::vector<int> * n_rows = nullptr);

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
