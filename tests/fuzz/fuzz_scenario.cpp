// libFuzzer target for scenario files: scenario_parse (JSON depth, the schema
// of every kind, method specs inside, views against the app's list), full
// size and small. Anything but success or an input_error is a bug.
//   build-fuzz/fuzz_scenario -runs=1000000 tests/fuzz_corpus/scenario
#include "../../app/view_ids.h"
#include "base/error.h"
#include "lab/scenario.h"

#include <cstdint>
#include <string>

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string text(reinterpret_cast<const char *>(data), size);
    for (bool small : {false, true}) {
        try {
            (void)scenario_parse(text, "fuzz.json", small, attnlab_app::view_ids());
        } catch (const input_error &) {
        }
    }
    return 0;
}
