#include "base/data_path.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

namespace attnlab {
namespace fs = std::filesystem;

static bool holds_data(const fs::path & dir) {
    std::error_code ec;
    return !dir.empty() && fs::is_directory(dir / "assets" / "presets", ec);
}

static std::vector<fs::path> candidates() {
    std::vector<fs::path> out;
    std::error_code ec;
    // /proc/self/exe: Linux is the one platform the project builds on.
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        fs::path dir = exe.parent_path();
        for (int up = 0; up < 3 && !dir.empty(); ++up) {
            out.push_back(dir);
            if (dir == dir.parent_path()) break;
            dir = dir.parent_path();
        }
    }
    if (const char * env = std::getenv("ATTNLAB_DATA_DIR"); env && *env) out.push_back(fs::path(env));
    out.push_back(fs::current_path(ec));
    return out;
}

const std::string & data_root() {
    static const std::string root = [] {
        const std::vector<fs::path> c = candidates();
        for (const fs::path & d : c) {
            if (holds_data(d)) return fs::absolute(d).lexically_normal().string();
        }
        std::error_code ec;
        return fs::current_path(ec).string();
    }();
    return root;
}

std::string data_path(const std::string & rel) {
    const std::string & r = data_root();
    if (!r.empty() && r.back() == '/') return r + rel;
    return r + "/" + rel;
}

std::string data_root_search_order() {
    std::string s;
    for (const fs::path & d : candidates()) {
        if (!s.empty()) s += ", ";
        s += d.string();
    }
    return s;
}

} // namespace attnlab
