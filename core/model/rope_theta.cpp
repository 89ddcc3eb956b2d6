#include "model/rope_theta.h"

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/gguf.h"

namespace attnlab {

static double theta_in(const nlohmann::json & obj, double def, const std::string & cfg_file, const std::string & field) {
    auto it = obj.find("rope_theta");
    if (it == obj.end() || it->is_null()) return def;
    if (!it->is_number()) throw input_error(cfg_file, field, "not a number");
    return it->get<double>();
}

double rope_theta_hf(const nlohmann::json & cfg, const std::string & cfg_file) {
    double theta = theta_in(cfg, 10000.0, cfg_file, "rope_theta");
    for (const char * key : {"rope_parameters", "rope_scaling"}) {
        auto it = cfg.find(key);
        if (it == cfg.end() || it->is_null()) continue;
        if (!it->is_object()) throw input_error(cfg_file, key, "not an object");
        // transformers 5 nests them per layer type where they differ (Gemma 3):
        // the global layers' base is the model's.
        auto full = it->find("full_attention");
        if (full != it->end()) {
            if (!full->is_object()) throw input_error(cfg_file, std::string(key) + ".full_attention", "not an object");
            theta = theta_in(*full, theta, cfg_file, std::string(key) + ".full_attention.rope_theta");
            continue;
        }
        theta = theta_in(*it, theta, cfg_file, std::string(key) + ".rope_theta");
    }
    return theta;
}

double rope_theta_gguf(const gguf_file & f, const std::string & arch) {
    return f.get_f64_or(arch + ".rope.freq_base", 10000.0);
}

} // namespace attnlab
