#include "metrics/head_table.h"

#include <string>

#include "base/job.h"
#include "data/capture.h"

namespace attnlab {

namespace {

void fill_entropy(const qkv_capture & cap, head_table & t, job_progress * progress) {
    const int rows = int(t.n_rows()), cols = t.n_head;
    t.entropy.assign(size_t(rows) * cols, 0.0);
    for (int r = 0; r < rows; ++r) {
        job_step(progress, double(r) / rows, "entropy layer " + std::to_string(t.layers[r]));
        const attention_layer_io io = capture_layer_io(cap, size_t(r));
#pragma omp parallel for schedule(dynamic, 1)
        for (int c = 0; c < cols; ++c) t.entropy[t.index(size_t(r), c)] = head_entropy(head_inputs_of(io, c));
    }
}

void fill_metrics(const qkv_capture & cap, const head_table_options & opt, head_table & t, job_progress * progress) {
    const int rows = int(t.n_rows()), cols = t.n_head;
    t.metrics.assign(size_t(rows) * cols, head_metrics());
    for (int r = 0; r < rows; ++r) {
        const attention_layer_io io = capture_layer_io(cap, size_t(r));
        for (int c = 0; c < cols; ++c) {
            job_step(progress, double(r * cols + c) / (rows * cols),
                     "layer " + std::to_string(io.layer) + " head " + std::to_string(c));
            t.metrics[t.index(size_t(r), c)] = head_metrics_of_method(io, c, *opt.method, opt.score);
        }
    }
}

} // namespace

head_table head_table_compute(const qkv_capture & cap, const head_table_options & opt, job_progress * progress) {
    head_table t;
    for (const auto & l : cap.layers) t.layers.push_back(l.layer);
    t.n_head = cap.info.n_head;
    if (opt.entropy) fill_entropy(cap, t, progress);
    if (opt.method) fill_metrics(cap, opt, t, progress);
    return t;
}

} // namespace attnlab
