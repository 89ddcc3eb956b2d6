// Helpers shared by the trained parameter sets (registry_trained.h).
#include "methods/registry_trained.h"

namespace attnlab {

int trained_layer_index(const std::vector<int> & layers, int layer) {
    for (size_t i = 0; i < layers.size(); ++i) {
        if (layers[i] == layer) return (int) i;
    }
    return -1;
}

double trained_mean_loss(const std::vector<float> & per_head) {
    double s = 0.0;
    for (float x : per_head) s += x;
    return per_head.empty() ? 0.0 : s / per_head.size();
}

} // namespace attnlab
