#pragma once
// Guard max_keys(k) (max_keys_guard.cpp): the spread of keys per query row of
// a selection against the cap, and the cap itself.
#include <cstdint>

#include "methods/method.h"

namespace attnlab {

// Keys per query row of a selection (before the cap) against the cap k.
struct max_keys_report {
    int64_t rows = 0;
    int64_t rows_over = 0;          // rows with more than k keys
    double share_over = 0.0;
    int64_t min_keys = 0, max_keys = 0;
    double mean_keys = 0.0, p50 = 0.0, p90 = 0.0, p99 = 0.0;
};
max_keys_report max_keys_report_of(const selection & inner, int k);
// The cap itself: rows over k keep their k best logits among the selected.
selection max_keys_cap(const head_inputs & in, const selection & inner, int k);

} // namespace attnlab
