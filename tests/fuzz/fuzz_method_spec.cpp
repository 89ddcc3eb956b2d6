// libFuzzer target for method specs: the grammar (method_spec_parse, the
// nesting limit), the resolver and every method's factory (method_create),
// then the canonical round trip the registry promises:
// method_create(m->spec())->spec() == m->spec(). Anything but success or an
// input_error is a bug.
//   build-fuzz/fuzz_method_spec -runs=1000000 tests/fuzz_corpus/method_spec
#include "base/error.h"
#include "methods/method.h"
#include "methods/method_spec.h"

#include <cstdint>
#include <string>

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    if (size > 4096) return 0;
    const std::string text(reinterpret_cast<const char *>(data), size);
    try {
        (void)method_spec_format(method_spec_parse(text));
        const std::unique_ptr<sparse_method> m = method_create(text);
        const std::string canon = m->spec();
        if (method_create(canon)->spec() != canon) __builtin_trap();
    } catch (const input_error &) {
    }
    return 0;
}
