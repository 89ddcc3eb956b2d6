#pragma once
// hybrid(δ) (hybrid.cpp): the per-head pooled estimate of the block density
// needed for `mass` of the attention, and the dense/sparse decision.
#include "methods/method.h"

namespace attnlab {

struct hybrid_estimate {
    double density = 0.0;   // estimated block density for `mass` of the attention
    bool dense = false;     // density > delta: the head runs dense
    selection sparse;       // the blocks the estimate needs (what runs when sparse)
};
hybrid_estimate hybrid_estimate_head(const head_inputs & in, int B, double mass, double delta);

} // namespace attnlab
