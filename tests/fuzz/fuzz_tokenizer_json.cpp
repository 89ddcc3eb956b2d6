// libFuzzer target for tokenizer.json (input: fuzz_input.h): the JSON depth
// limit, the vocabulary and merges, the pre-tokenizer, the id budget; a file
// that loads then encodes a fixed text and checks every id is in range.
// Anything but success or an input_error naming the file is a bug.
//   cmake --preset fuzz && cmake --build build-fuzz --target fuzz_tokenizer_json
//   build-fuzz/fuzz_tokenizer_json -runs=1000000 tests/fuzz_corpus/tokenizer_json
#include "base/error.h"
#include "fuzz_input.h"
#include "model/tokenizer.h"

#include <cstdint>
#include <string>

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string path = fuzz_input_path("fuzz_tokenizer_json", data, size);
    if (path.empty()) return 0;
    try {
        const bpe_tokenizer tok = bpe_tokenizer::from_tokenizer_json(path);
        for (int32_t id : tok.encode("Hello, world! In the beginning 123 \xc3\xa9t\xc3\xa9")) {
            if (id < 0 || id >= tok.n_vocab()) __builtin_trap();
        }
    } catch (const input_error & e) {
        if (e.file() != path) __builtin_trap(); // errors must name the file
    }
    return 0;
}
