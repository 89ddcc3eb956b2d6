// libFuzzer target for the GGUF reader (input: fuzz_input.h): mmap,
// header, metadata, tensor infos, bounds, then dequantisation of each tensor.
// Anything but success or input_error is a bug.
//   cmake --preset fuzz && cmake --build build-fuzz --target fuzz_gguf
//   build-fuzz/fuzz_gguf -runs=1000000 /tmp/corpus tests/fuzz_corpus/gguf
#include "base/error.h"
#include "fuzz_input.h"
#include "io/gguf.h"

#include <cstdint>
#include <cstdio>
#include <string>

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string path = fuzz_input_path("fuzz_gguf", data, size);
    if (path.empty()) return 0;
    try {
        gguf_file g = gguf_file::open(path);
        for (const auto & kv : g.metadata()) (void)gguf_value_type_name(kv.second.type);
        try {
            (void)g.get_u64_or("general.alignment", 32);
            (void)g.get_str_array("tokenizer.ggml.tokens");
        } catch (const input_error &) {
        }
        for (const gguf_tensor & t : g.tensors()) {
            const ggml_type_info * info = ggml_type_info_get((uint32_t)t.type);
            if (!info || !info->dequantizable) continue;
            if (t.n_elements() > (1 << 24)) continue; // bounded by the file; skip slow giants
            std::vector<float> v = g.tensor_to_f32(t);
            if ((int64_t)v.size() != t.n_elements()) __builtin_trap();
        }
    } catch (const input_error & e) {
        if (e.file() != path) __builtin_trap(); // errors must name the file
    }
    return 0;
}
