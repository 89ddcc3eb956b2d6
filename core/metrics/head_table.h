#pragma once
// Metrics of every captured layer x query head of a capture: the table behind
// the app's Layers x heads grid, and anything else that wants a whole-model
// view of one method (the CLI, tests). Rows follow cap.layers; one column per
// query head; cell (row, head) is at row * n_head + head.
//
// Entropy needs no method, so it is computed on its own (it is what the grid
// shows before a method is chosen); a method's metrics (head_metrics.h,
// against dense softmax of the same head) come from a second call.
#include <cstddef>
#include <vector>

#include "metrics/head_metrics.h"

namespace attnlab {

struct qkv_capture;
class job_progress;

struct head_table {
    std::vector<int> layers;            // model layer of each row
    int n_head = 0;
    std::vector<double> entropy;        // mean row entropy, nats; empty unless asked
    std::vector<head_metrics> metrics;  // empty without a method

    size_t n_rows() const { return layers.size(); }
    size_t index(size_t row, int head) const { return row * size_t(n_head) + size_t(head); }
};

struct head_table_options {
    bool entropy = true;
    const sparse_method * method = nullptr;  // null: no method metrics
    score_fn score;                          // the method's score function
};

// Fills what the options ask for. Progress per layer for entropy (heads of a
// layer in parallel, OpenMP) and per head for a method; job_cancelled when
// progress is cancelled.
head_table head_table_compute(const qkv_capture & cap, const head_table_options & opt, job_progress * progress = nullptr);

} // namespace attnlab
