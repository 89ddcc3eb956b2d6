// libFuzzer target for a snapshot's manifest.json: the input becomes
// manifest.json of a directory holding one file, a.txt ("abc"), and
// snapshot_read checks it (JSON depth, schema, threads, files, hashes).
// Anything but success or an input_error is a bug.
//   build-fuzz/fuzz_manifest -runs=1000000 tests/fuzz_corpus/manifest
#include "base/error.h"
#include "fuzz_dir.h"
#include "lab/snapshot.h"

#include <cstdint>
#include <string>

using namespace attnlab;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string & dir = fuzz_dir("fuzz_manifest");
    if (dir.empty()) return 0;
    static const bool file = fuzz_write(dir + "/a.txt", reinterpret_cast<const uint8_t *>("abc"), 3);
    if (!file || !fuzz_write(dir + "/manifest.json", data, size)) return 0;
    try {
        (void)snapshot_read(dir);
    } catch (const input_error & e) {
        if (e.file().compare(0, dir.size(), dir) != 0) __builtin_trap(); // errors name a file of the snapshot
    }
    return 0;
}
