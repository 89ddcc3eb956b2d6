// The scenario-kind table: the one list of kinds (see kind.h). Each entry is
// defined in its own file, kind_<name>.cpp.
#include "lab/scenario/kind.h"

namespace attnlab {

scenario_kind scenario_kind_sweep();
scenario_kind scenario_kind_passkey();
scenario_kind scenario_kind_trained_compare();
scenario_kind scenario_kind_layer_adaptive();
scenario_kind scenario_kind_sim_quadratic();
scenario_kind scenario_kind_sim_regimes();
scenario_kind scenario_kind_claims();

const std::vector<scenario_kind> & scenario_kind_table() {
    static const std::vector<scenario_kind> t = {
        scenario_kind_sweep(),          scenario_kind_passkey(),       scenario_kind_trained_compare(),
        scenario_kind_layer_adaptive(), scenario_kind_sim_quadratic(), scenario_kind_sim_regimes(),
        scenario_kind_claims(),
    };
    return t;
}

const scenario_kind * scenario_kind_find(const std::string & name) {
    for (const scenario_kind & k : scenario_kind_table()) {
        if (k.name == name) return &k;
    }
    return nullptr;
}

} // namespace attnlab
