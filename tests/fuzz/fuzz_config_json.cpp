// libFuzzer target for a Hugging Face config.json: the input becomes
// config.json of a checkpoint directory whose model.safetensors holds no
// tensors, then the loader (every config field, checked shapes, the layer
// budget) and `info`'s reader (model_info_read) run on it. Anything but an
// input_error naming config.json (or the directory, for tensors) is a bug.
//   build-fuzz/fuzz_config_json -runs=1000000 tests/fuzz_corpus/config_json
#include "base/error.h"
#include "fuzz_dir.h"
#include "model/llama.h"
#include "model/model_info.h"

#include <cstdint>
#include <cstring>
#include <string>

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string & dir = fuzz_dir("fuzz_config_json");
    if (dir.empty()) return 0;
    static const bool weights = [&] {
        const char st[] = "\x02\0\0\0\0\0\0\0{}"; // an empty safetensors file
        const uint8_t * p = reinterpret_cast<const uint8_t *>(st);
        return fuzz_write(dir + "/model.safetensors", p, 10);
    }();
    if (!weights || !fuzz_write(dir + "/config.json", data, size)) return 0;
    const std::string cfg = dir + "/config.json";
    try {
        (void)llama_model_load(dir);
    } catch (const input_error & e) {
        if (e.file() != cfg && e.file() != dir) __builtin_trap();
    }
    try {
        (void)model_info_read(dir);
    } catch (const input_error & e) {
        if (e.file() != cfg && e.file() != dir) __builtin_trap();
    }
    return 0;
}
