// libFuzzer target for the safetensors reader. The input goes into an
// in-memory file (memfd) opened by path, so safetensors_file::open runs
// exactly as on disk: mmap, header length, JSON header, every tensor entry,
// then float conversion of each float tensor. Anything but success or
// input_error is a bug.
//   cmake --preset fuzz && cmake --build build-fuzz --target fuzz_safetensors
//   build-fuzz/fuzz_safetensors -runs=1000000 /tmp/corpus tests/fuzz_corpus/safetensors
#include "base/error.h"
#include "fuzz_input.h"
#include "io/safetensors.h"

#include <cstdint>
#include <string>

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string path = fuzz_input_path("fuzz_safetensors", data, size);
    if (path.empty()) return 0;
    try {
        safetensors_file s = safetensors_file::open(path);
        for (const st_tensor & t : s.tensors()) {
            if (s.find(t.name) == nullptr) __builtin_trap();
            if (t.dtype != st_dtype::F64 && t.dtype != st_dtype::F32 && t.dtype != st_dtype::F16 &&
                t.dtype != st_dtype::BF16) {
                continue;
            }
            std::vector<float> v = s.to_f32(t);
            if ((int64_t)v.size() != t.n_elements()) __builtin_trap();
        }
    } catch (const input_error & e) {
        if (e.file() != path) __builtin_trap();
    }
    return 0;
}
