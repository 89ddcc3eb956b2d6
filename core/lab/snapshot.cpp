// Snapshots: staged writing with one directory rename, strict reading, exact
// metric comparison, and re-running for verification.
#include "lab/snapshot.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <signal.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>

#include "base/error.h"
#include "base/read_file.h"
#include "base/json_read.h"
#include "base/sha256.h"
#include "base/job.h"

// Baked in by CMake (set_source_files_properties on this file); the
// fallbacks keep the file compiling in other builds.
#ifndef ATTNLAB_VERSION
#define ATTNLAB_VERSION "unknown"
#endif
#ifndef ATTNLAB_GIT_COMMIT_FULL
#ifdef ATTNLAB_GIT_COMMIT
#define ATTNLAB_GIT_COMMIT_FULL ATTNLAB_GIT_COMMIT
#else
#define ATTNLAB_GIT_COMMIT_FULL "unknown"
#endif
#endif
#ifndef ATTNLAB_BUILD_TYPE
#define ATTNLAB_BUILD_TYPE "unknown"
#endif

namespace fs = std::filesystem;

namespace attnlab {

namespace {

const char * const manifest_name = "manifest.json";
const char * const staging_marker = ".staging-";
// Written into every staging directory on creation and removed just before
// the rename publishes it: stale-staging cleanup deletes only folders that
// carry it, never a sibling that merely has a similar name.
const char * const staging_mark_file = ".attnlab-staging";

std::string strip_trailing_slashes(std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
}

std::string parent_of(const std::string & p) {
    const size_t slash = p.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return p.substr(0, slash);
}

std::string base_of(const std::string & p) {
    const size_t slash = p.rfind('/');
    return slash == std::string::npos ? p : p.substr(slash + 1);
}

// A relative path that stays inside the snapshot: no absolute, no "." / ".."
// / empty components, no backslashes, not the manifest itself.
std::string check_rel(const std::string & rel) {
    if (rel.empty()) return "empty path";
    if (rel[0] == '/') return "absolute path";
    if (rel.find('\\') != std::string::npos) return "backslash in path";
    std::stringstream ss(rel);
    std::string part;
    size_t parts = 0;
    while (std::getline(ss, part, '/')) {
        if (part.empty() || part == "." || part == "..") return "path component '" + part + "' not allowed";
        parts++;
    }
    if (rel.back() == '/') return "trailing slash";
    if (parts == 1 && rel == manifest_name) return "manifest.json is written by commit";
    return "";
}

void fsync_path(const std::string & path, bool directory) {
    const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

void write_file_synced(const std::string & path, const std::string & text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw input_error(path, "file", std::string("cannot create: ") + std::strerror(errno));
    size_t off = 0;
    while (off < text.size()) {
        const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int e = errno;
            ::close(fd);
            throw input_error(path, "file", std::string("write failed: ") + std::strerror(e));
        }
        off += size_t(n);
    }
    const bool ok = ::fsync(fd) == 0;
    if (::close(fd) != 0 || !ok) throw input_error(path, "file", "fsync/close failed");
}

std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

bool dir_is_empty(const std::string & dir) {
    std::error_code ec;
    return fs::is_empty(dir, ec) && !ec;
}

// A directory "looks like" a snapshot when its manifest parses and names our
// schema; the full check (hashes) is snapshot_read's.
bool looks_like_snapshot(const std::string & dir) {
    try {
        const nlohmann::json m = json_read_file(dir + "/" + manifest_name, "json");
        return m.is_object() && m.value("schema", std::string()) == snapshot_schema;
    } catch (const std::exception &) {
        return false;
    }
}

bool is_staging_name(const std::string & base) {
    return !base.empty() && base[0] == '.' && base.find(staging_marker) != std::string::npos;
}

// Removes ".BASE.staging-PID-*" and ".BASE.old-PID-*" siblings whose process
// is gone (an export killed before its destructor ran), and only those this
// program made: a staging folder carries staging_mark_file, an old one is a
// snapshot moved aside. Anything else of a similar name is left alone.
void remove_stale_staging(const std::string & parent, const std::string & base) {
    std::error_code ec;
    if (!fs::is_directory(parent, ec)) return;
    for (const std::string & kind : {std::string(staging_marker), std::string(".old-")}) {
        const std::string prefix = "." + base + kind;
        for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (name.compare(0, prefix.size(), prefix) != 0) continue;
            const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
            if (pid <= 0) continue;
            if (::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue; // still running (or not ours to judge)
            std::error_code rec;
            if (!fs::is_directory(fs::symlink_status(it->path(), rec))) continue;
            const bool ours = kind == staging_marker
                                  ? fs::is_regular_file(fs::symlink_status(it->path() / staging_mark_file, rec))
                                  : looks_like_snapshot(it->path().string());
            if (ours) fs::remove_all(it->path(), rec);
        }
    }
}

// Every regular file under root (relative, '/'-separated, sorted). Anything
// that is neither a file nor a directory (symlink, fifo, ...) is refused.
std::vector<std::string> walk_files(const std::string & root) {
    std::vector<std::string> out;
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
    if (ec) throw input_error(root, "dir", "cannot list: " + ec.message());
    for (; it != end; it.increment(ec)) {
        if (ec) throw input_error(root, "dir", "cannot list: " + ec.message());
        const fs::file_status st = it->symlink_status();
        // lexically: fs::relative resolves symlinks and would name the target, not the link
        const std::string rel = it->path().lexically_relative(root).generic_string();
        if (fs::is_directory(st)) continue;
        if (!fs::is_regular_file(st)) throw input_error(root + "/" + rel, "file", "not a regular file (symlinks and special files are not allowed in a snapshot)");
        out.push_back(rel);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string json_pointer_escape(const std::string & key) {
    std::string out;
    for (char c : key) {
        if (c == '~') out += "~0";
        else if (c == '/') out += "~1";
        else out += c;
    }
    return out;
}

void compare_rec(const nlohmann::json & r, const nlohmann::json & m, const std::string & path,
                 std::vector<snapshot_diff> & out) {
    auto differ = [&](std::string rs, std::string ms) { out.push_back({path.empty() ? "/" : path, std::move(rs), std::move(ms)}); };
    if (r.is_number() && m.is_number()) {
        if (r.is_number_integer() && m.is_number_integer()) {
            if (r != m) differ(r.dump(), m.dump());
            return;
        }
        const double a = r.get<double>(), b = m.get<double>();
        if (std::isnan(a) && std::isnan(b)) return;
        // Bit-identical: 0.0 vs -0.0 and 1-ulp differences both count.
        if (std::memcmp(&a, &b, sizeof a) != 0) differ(r.dump(), m.dump());
        return;
    }
    if (r.type() != m.type()) {
        differ(r.dump(), m.dump());
        return;
    }
    if (r.is_object()) {
        for (auto it = r.begin(); it != r.end(); ++it) {
            const std::string p = path + "/" + json_pointer_escape(it.key());
            auto f = m.find(it.key());
            if (f == m.end()) out.push_back({p, it.value().dump(), "<missing>"});
            else compare_rec(it.value(), *f, p, out);
        }
        for (auto it = m.begin(); it != m.end(); ++it) {
            if (!r.contains(it.key())) out.push_back({path + "/" + json_pointer_escape(it.key()), "<missing>", it.value().dump()});
        }
        return;
    }
    if (r.is_array()) {
        const size_t n = std::max(r.size(), m.size());
        for (size_t i = 0; i < n; i++) {
            const std::string p = path + "/" + std::to_string(i);
            if (i >= r.size()) out.push_back({p, "<missing>", m[i].dump()});
            else if (i >= m.size()) out.push_back({p, r[i].dump(), "<missing>"});
            else compare_rec(r[i], m[i], p, out);
        }
        return;
    }
    if (r != m) differ(r.dump(), m.dump());
}

// The CPU model: results reproduce bit for bit only with the same build on
// the same kind of CPU (-march=native, vector widths), so record it.
std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.compare(0, 10, "model name") == 0) {
            const size_t c = line.find(':'), b = c == std::string::npos ? c : line.find_first_not_of(" \t", c + 1);
            if (b != std::string::npos) return line.substr(b);
        }
    }
    return "unknown";
}

} // namespace

// ---------------------------------------------------------------- program

nlohmann::json snapshot_program_info() {
    return {{"name", "attnlab"}, {"version", ATTNLAB_VERSION}, {"git_commit", ATTNLAB_GIT_COMMIT_FULL},
            {"build_type", ATTNLAB_BUILD_TYPE}};
}

// ---------------------------------------------------------------- writer

snapshot_writer::snapshot_writer(const std::string & final_dir, bool overwrite)
    : final_dir_(strip_trailing_slashes(final_dir)), overwrite_(overwrite) {
    if (final_dir_.empty()) throw input_error("<empty>", "out", "no snapshot directory given");
    const std::string base = base_of(final_dir_);
    if (base == "." || base == ".." || base == "/" || is_staging_name(base)) {
        throw input_error(final_dir_, "out", "not a usable snapshot directory name");
    }
    std::error_code ec;
    if (fs::exists(fs::symlink_status(final_dir_, ec))) {
        if (!fs::is_directory(fs::symlink_status(final_dir_, ec))) {
            throw input_error(final_dir_, "out", "exists and is not a directory");
        }
        if (!dir_is_empty(final_dir_)) {
            if (!looks_like_snapshot(final_dir_)) {
                throw input_error(final_dir_, "out", "exists and is neither empty nor a snapshot; refusing to replace it");
            }
            if (!overwrite_) throw input_error(final_dir_, "out", "already holds a snapshot (overwrite it explicitly or choose another directory)");
        }
    }
    const std::string parent = parent_of(final_dir_);
    fs::create_directories(parent, ec);
    if (!fs::is_directory(parent)) throw input_error(final_dir_, "out", "cannot create the parent directory " + parent);
    lock_ = std::make_unique<dir_lock>(final_dir_, dir_lock::file, "out");
    remove_stale_staging(parent, base);
    std::random_device rd;
    char rnd[17];
    std::snprintf(rnd, sizeof rnd, "%08x%08x", unsigned(rd()), unsigned(rd()));
    staging_ = parent + "/." + base + staging_marker + std::to_string(::getpid()) + "-" + rnd;
    if (::mkdir(staging_.c_str(), 0755) != 0) {
        throw input_error(staging_, "out", std::string("cannot create the staging directory: ") + std::strerror(errno));
    }
    write_file_synced(staging_ + "/" + staging_mark_file, "pid " + std::to_string(::getpid()) + "\n");
}

snapshot_writer::~snapshot_writer() {
    if (committed_ || staging_.empty()) return;
    std::error_code ec;
    fs::remove_all(staging_, ec);
}

std::string snapshot_writer::path(const std::string & rel) {
    if (committed_) throw std::logic_error("snapshot_writer::path after commit");
    const std::string why = check_rel(rel);
    if (!why.empty()) throw input_error(final_dir_ + "/" + rel, "path", why);
    const std::string full = staging_ + "/" + rel;
    std::error_code ec;
    fs::create_directories(parent_of(full), ec);
    if (ec) throw input_error(full, "path", "cannot create its directory: " + ec.message());
    return full;
}

void snapshot_writer::add_copy(const std::string & src, const std::string & rel) {
    const std::string dst = path(rel);
    uint64_t src_bytes = 0;
    ::close(open_regular_file(src, "file", &src_bytes)); // a FIFO or device is refused, not copied forever
    std::ifstream in(src, std::ios::binary);
    if (!in) throw input_error(src, "file", "cannot read");
    std::ofstream out(dst, std::ios::binary | std::ios::trunc);
    if (!out) throw input_error(dst, "file", "cannot create");
    out << in.rdbuf();
    out.flush();
    if (!out || in.bad()) throw input_error(dst, "file", "copy from " + src + " failed");
}

nlohmann::json snapshot_writer::commit(nlohmann::json manifest) {
    if (committed_) throw std::logic_error("snapshot_writer::commit called twice");
    const std::string mpath = final_dir_ + "/" + manifest_name;
    if (!manifest.is_object()) throw input_error(mpath, "manifest", "must be a JSON object");
    if (!manifest.contains("metrics") || !manifest["metrics"].is_object()) {
        throw input_error(mpath, "metrics", "a snapshot needs a \"metrics\" object (what verify compares)");
    }
    // Hash (and fsync) every staged file; the manifest lists them all.
    nlohmann::json files = nlohmann::json::array();
    for (const std::string & rel : walk_files(staging_)) {
        if (rel == staging_mark_file) continue;   // removed before the rename
        if (rel == manifest_name) throw input_error(staging_ + "/" + rel, "path", "manifest.json is written by commit");
        const std::string full = staging_ + "/" + rel;
        fsync_path(full, false);
        files.push_back({{"path", rel}, {"bytes", uint64_t(fs::file_size(full))}, {"sha256", sha256_file(full)}});
    }
    manifest["schema"] = snapshot_schema;
    manifest["program"] = snapshot_program_info();
    if (!manifest.contains("created_utc")) manifest["created_utc"] = utc_now();
    if (!manifest.contains("host")) manifest["host"] = {{"cpu", cpu_model()}};
    manifest["files"] = files;
    write_file_synced(staging_ + "/" + manifest_name, manifest.dump(2) + "\n");
    // Directory entries durable before the rename publishes them.
    std::error_code ec;
    for (fs::recursive_directory_iterator it(staging_, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_directory()) fsync_path(it->path().string(), true);
    }
    if (::unlink((staging_ + "/" + staging_mark_file).c_str()) != 0) {
        throw input_error(staging_, "out", std::string("cannot remove the staging mark: ") + std::strerror(errno));
    }
    fsync_path(staging_, true);

    const std::string parent = parent_of(final_dir_);
    const bool exists = fs::exists(fs::symlink_status(final_dir_, ec));
    if (!exists || dir_is_empty(final_dir_)) {
        // rename(2) replaces an empty directory atomically.
        if (std::rename(staging_.c_str(), final_dir_.c_str()) != 0) {
            throw input_error(final_dir_, "out", std::string("cannot move the snapshot into place: ") + std::strerror(errno));
        }
    } else {
        if (!looks_like_snapshot(final_dir_)) throw input_error(final_dir_, "out", "exists and is neither empty nor a snapshot; refusing to replace it");
        if (!overwrite_) throw input_error(final_dir_, "out", "already holds a snapshot (overwrite it explicitly or choose another directory)");
        // Swap old and new in one step; the old one is then in staging_.
        if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, final_dir_.c_str(), RENAME_EXCHANGE) == 0) {
            fs::remove_all(staging_, ec);
        } else {
            // Filesystems without RENAME_EXCHANGE: move the old one aside
            // first (a reader briefly sees no snapshot, never a half one).
            const std::string old = parent + "/." + base_of(final_dir_) + ".old-" + std::to_string(::getpid()) + "-" +
                                    base_of(staging_).substr(base_of(staging_).rfind('-') + 1);
            if (std::rename(final_dir_.c_str(), old.c_str()) != 0 || std::rename(staging_.c_str(), final_dir_.c_str()) != 0) {
                throw input_error(final_dir_, "out", std::string("cannot replace the snapshot: ") + std::strerror(errno));
            }
            fs::remove_all(old, ec);
        }
    }
    fsync_path(parent, true);
    committed_ = true;
    return manifest;
}

// ---------------------------------------------------------------- reader

std::vector<snapshot_file> snapshot_list_files(const std::string & dir) {
    std::vector<snapshot_file> out;
    for (const std::string & rel : walk_files(dir)) {
        if (rel == manifest_name) continue;
        const std::string full = dir + "/" + rel;
        out.push_back({rel, uint64_t(fs::file_size(full)), sha256_file(full)});
    }
    return out;
}

nlohmann::json snapshot_read(const std::string & dir_in) {
    const std::string dir = strip_trailing_slashes(dir_in);
    std::error_code ec;
    if (!fs::exists(dir, ec)) throw input_error(dir, "dir", "does not exist");
    if (!fs::is_directory(dir, ec)) throw input_error(dir, "dir", "not a directory (a snapshot is a directory with manifest.json)");
    if (is_staging_name(base_of(fs::absolute(dir, ec).lexically_normal().string()))) {
        throw input_error(dir, "dir", "an uncommitted staging directory of an interrupted export, not a snapshot");
    }
    const std::string mpath = dir + "/" + manifest_name;
    if (!fs::exists(fs::symlink_status(mpath, ec))) {
        throw input_error(mpath, "manifest", "missing: not a snapshot, or an export that never finished");
    }
    const nlohmann::json m = json_read_file(mpath, "json");
    if (!m.is_object()) throw input_error(mpath, "json", "not a JSON object");
    if (!m.contains("schema") || !m["schema"].is_string()) throw input_error(mpath, "schema", "missing");
    if (m["schema"] != snapshot_schema) {
        throw input_error(mpath, "schema", "is " + m["schema"].dump() + ", this program reads \"" + snapshot_schema + "\"");
    }
    if (!m.contains("program") || !m["program"].is_object()) throw input_error(mpath, "program", "missing or not an object");
    for (const char * k : {"name", "version", "git_commit"}) {
        if (!m["program"].contains(k) || !m["program"][k].is_string()) throw input_error(mpath, std::string("program.") + k, "missing or not a string");
    }
    if (!m.contains("created_utc") || !m["created_utc"].is_string()) throw input_error(mpath, "created_utc", "missing or not a string");
    if (!m.contains("metrics") || !m["metrics"].is_object()) throw input_error(mpath, "metrics", "missing or not an object");
    if (m.contains("scenario") && !m["scenario"].is_object()) throw input_error(mpath, "scenario", "not an object");
    // checked, never narrowed: 4294967297 is out of range, not 1
    if (m.contains("threads")) (void)json_int_in(mpath, "threads", m["threads"], 1, k_snapshot_max_threads);
    if (!m.contains("files") || !m["files"].is_array()) throw input_error(mpath, "files", "missing or not an array");

    std::set<std::string> listed;
    const nlohmann::json & files = m["files"];
    for (size_t i = 0; i < files.size(); i++) {
        const std::string field = "files[" + std::to_string(i) + "]";
        const nlohmann::json & e = files[i];
        if (!e.is_object() || !e.contains("path") || !e["path"].is_string() || !e.contains("bytes") ||
            !e["bytes"].is_number_unsigned() || !e.contains("sha256") || !e["sha256"].is_string()) {
            throw input_error(mpath, field, "needs \"path\" (string), \"bytes\" (unsigned) and \"sha256\" (string)");
        }
        const std::string rel = e["path"];
        const std::string why = check_rel(rel);
        if (!why.empty()) throw input_error(mpath, field + ".path", why + ": " + rel);
        if (!listed.insert(rel).second) throw input_error(mpath, field + ".path", "listed twice: " + rel);
        const std::string full = dir + "/" + rel;
        const fs::file_status st = fs::symlink_status(full, ec);
        if (!fs::exists(st)) throw input_error(full, "file", "listed in manifest.json but missing (partial or damaged snapshot)");
        if (!fs::is_regular_file(st)) throw input_error(full, "file", "not a regular file");
        const uint64_t want = e["bytes"], have = fs::file_size(full);
        if (want != have) {
            throw input_error(full, "bytes", "manifest.json says " + std::to_string(want) + " bytes, the file has " + std::to_string(have));
        }
        const std::string sha = sha256_file(full);
        if (sha != e["sha256"].get<std::string>()) {
            throw input_error(full, "sha256", "manifest.json says " + e["sha256"].get<std::string>() + ", the file hashes to " + sha +
                                                  " (changed or corrupt)");
        }
    }
    for (const std::string & rel : walk_files(dir)) {
        if (rel != manifest_name && !listed.count(rel)) {
            throw input_error(dir + "/" + rel, "files", "not listed in manifest.json (the snapshot was modified)");
        }
    }
    return m;
}

// ---------------------------------------------------------------- compare

std::vector<snapshot_diff> snapshot_compare_metrics(const nlohmann::json & recorded, const nlohmann::json & measured) {
    std::vector<snapshot_diff> out;
    compare_rec(recorded, measured, "", out);
    return out;
}

// ---------------------------------------------------------------- verify

namespace {
struct omp_threads_scope {
    int saved;
    explicit omp_threads_scope(int n) : saved(omp_get_max_threads()) { omp_set_num_threads(n); }
    ~omp_threads_scope() { omp_set_num_threads(saved); }
};
struct temp_dir_scope {
    std::string path;
    ~temp_dir_scope() {
        if (path.empty()) return;
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};
} // namespace

snapshot_verify_result snapshot_verify(const std::string & dir, const snapshot_runner & runner,
                                       const std::string & keep_dir, job_progress * progress) {
    snapshot_verify_result r;
    r.recorded = snapshot_read(dir);
    const std::string mpath = strip_trailing_slashes(dir) + "/" + manifest_name;
    if (!r.recorded.contains("scenario")) throw input_error(mpath, "scenario", "missing: this snapshot records nothing to re-run");
    if (!r.recorded.contains("threads")) throw input_error(mpath, "threads", "missing: the thread count is needed to reproduce sums exactly");
    if (!runner) throw std::logic_error("snapshot_verify: no runner");

    temp_dir_scope tmp;
    std::string out;
    std::error_code ec;
    if (!keep_dir.empty()) {
        out = strip_trailing_slashes(keep_dir);
        if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && dir_is_empty(out))) {
            throw input_error(out, "--keep", "exists; choose a new directory for the re-run");
        }
    } else {
        const char * env = std::getenv("TMPDIR");
        std::string tmpl = std::string(env && *env ? env : "/tmp") + "/attnlab-verify-XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (!::mkdtemp(buf.data())) throw input_error(tmpl, "dir", std::string("cannot create a temporary directory: ") + std::strerror(errno));
        tmp.path = buf.data();
        out = tmp.path + "/rerun";
    }
    {
        // The recorded count (checked by snapshot_read), capped to this
        // machine: more threads than hardware threads only oversubscribes.
        const int64_t want = r.recorded["threads"].get<int64_t>();
        const int64_t hw = std::max<int64_t>(1, (int64_t)std::thread::hardware_concurrency());
        r.threads = (int)std::min(want, hw);
        if (r.threads < want) {
            r.notes.push_back("recorded with " + std::to_string(want) + " threads; this machine runs " + std::to_string(hw) +
                              ", so sums that depend on the thread count may differ");
        }
        omp_threads_scope threads(r.threads);
        runner(r.recorded["scenario"], out, progress);
    }
    r.rerun = snapshot_read(out);
    if (!keep_dir.empty()) r.rerun_dir = out;

    for (snapshot_diff & d : snapshot_compare_metrics(r.recorded["metrics"], r.rerun["metrics"])) {
        d.path = "/metrics" + (d.path == "/" ? std::string() : d.path);
        r.diffs.push_back(std::move(d));
    }
    // Different inputs explain different metrics; say so even when the
    // metrics happen to agree.
    auto sha_at = [](const nlohmann::json & m, const nlohmann::json::json_pointer & p) -> std::string {
        return m.contains(p) && m[p].is_string() ? m[p].get<std::string>() : std::string("<missing>");
    };
    std::vector<std::string> pointers;
    if (r.recorded.contains("inputs") && r.recorded["inputs"].is_object()) {
        for (auto it = r.recorded["inputs"].begin(); it != r.recorded["inputs"].end(); ++it) {
            if (it.value().is_object() && it.value().contains("sha256")) pointers.push_back("/inputs/" + json_pointer_escape(it.key()) + "/sha256");
        }
    }
    if (r.recorded.contains("trained") && r.recorded["trained"].is_array()) {
        for (size_t i = 0; i < r.recorded["trained"].size(); i++) pointers.push_back("/trained/" + std::to_string(i) + "/sha256");
    }
    for (const std::string & p : pointers) {
        const nlohmann::json::json_pointer jp(p);
        const std::string a = sha_at(r.recorded, jp), b = sha_at(r.rerun, jp);
        if (a != b) r.diffs.push_back({p, a, b});
    }
    std::map<std::string, std::string> rec_files;
    for (const auto & e : r.recorded["files"]) rec_files[e["path"].get<std::string>()] = e["sha256"].get<std::string>();
    for (const auto & e : r.rerun["files"]) {
        auto f = rec_files.find(e["path"].get<std::string>());
        if (f != rec_files.end() && f->second != e["sha256"].get<std::string>()) r.files_differ.push_back(f->first);
    }
    return r;
}

namespace {

std::string str_at(const nlohmann::json & j, const char * key, const std::string & def = "") {
    if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
    return def;
}

const nlohmann::json & object_at(const nlohmann::json & j, const char * key) {
    static const nlohmann::json empty = nlohmann::json::object();
    if (j.is_object() && j.contains(key) && j[key].is_object()) return j[key];
    return empty;
}

bool ends_with(const std::string & s, const std::string & tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

int restore_ctx_of(const nlohmann::json & m) {
    const nlohmann::json & gui = object_at(m, "gui");
    if (gui.contains("ctx") && gui["ctx"].is_number_integer()) return gui["ctx"].get<int>();
    const nlohmann::json & sc = object_at(m, "scenario");
    if (sc.contains("ctx")) {
        const nlohmann::json & c = sc["ctx"];
        if (c.is_number_integer()) return c.get<int>();
        if (c.is_array() && !c.empty() && c[0].is_number_integer()) return c[0].get<int>();
    }
    return 512;
}

// The first method a capture can show: not dense, with parameters, and no
// file relative to the snapshot (params=, table=).
std::string restore_method_of(const nlohmann::json & m, const std::vector<std::string> & methods) {
    const nlohmann::json & gui = object_at(m, "gui");
    if (gui.contains("method") && gui["method"].is_string()) return gui["method"].get<std::string>();
    for (const std::string & x : methods) {
        if (x.rfind("dense", 0) != 0 && x.find('=') != std::string::npos && x.find("params=") == std::string::npos &&
            x.find("table=") == std::string::npos)
            return x;
    }
    return "";
}

} // namespace

snapshot_summary snapshot_summarize(const nlohmann::json & m) {
    snapshot_summary s;
    const nlohmann::json & prog = object_at(m, "program");
    s.program_name = str_at(prog, "name");
    s.program_version = str_at(prog, "version");
    s.git_commit = str_at(prog, "git_commit");
    s.build_type = str_at(prog, "build_type");
    s.created_utc = str_at(m, "created_utc");
    const nlohmann::json & sc = object_at(m, "scenario");
    s.has_scenario = !sc.empty();
    s.small = m.is_object() && m.contains("small") && m["small"].is_boolean() && m["small"].get<bool>();
    s.gui_export = m.is_object() && m.contains("gui");
    s.scenario_title = str_at(sc, "title");
    s.scenario_kind = str_at(sc, "kind");
    s.preset_source = str_at(sc, "source");
    s.preset_hw = str_at(sc, "hw", "-");
    const nlohmann::json & inputs = object_at(m, "inputs");
    const nlohmann::json & model = object_at(inputs, "model");
    const nlohmann::json & text = object_at(inputs, "text");
    s.model = str_at(model, "path", str_at(model, "id"));
    s.model_sha256 = str_at(model, "sha256");
    s.text_spec = str_at(text, "spec");
    s.text_sha256 = str_at(text, "sha256");
    if (m.is_object() && m.contains("methods") && m["methods"].is_array()) {
        for (const auto & x : m["methods"]) s.methods.push_back(x.is_string() ? x.get<std::string>() : x.dump());
    }
    if (m.is_object() && m.contains("threads") && m["threads"].is_number_integer()) {
        const int64_t t = m["threads"].get<int64_t>();
        s.threads = t >= 1 && t <= k_snapshot_max_threads ? (int)t : 0;
    }
    if (m.is_object() && m.contains("files") && m["files"].is_array()) {
        s.n_files = m["files"].size();
        for (const auto & f : m["files"]) {
            const std::string rel = str_at(f, "path");
            if (ends_with(rel, ".png")) s.figures.push_back(rel);
        }
    }
    for (const auto & kv : object_at(m, "metrics").items()) {
        s.metrics.emplace_back(kv.key(), kv.value().is_string() ? kv.value().get<std::string>() : kv.value().dump());
    }
    s.restore_model = str_at(model, "path");
    s.restore_text = s.text_spec;
    s.restore_ctx = restore_ctx_of(m);
    std::vector<std::string> method_strings;
    if (m.is_object() && m.contains("methods") && m["methods"].is_array()) {
        for (const auto & x : m["methods"]) {
            if (x.is_string()) method_strings.push_back(x.get<std::string>());
        }
    }
    s.restore_method = restore_method_of(m, method_strings);
    s.restore_layers_spec = str_at(object_at(m, "gui"), "layers_spec");
    return s;
}

nlohmann::json snapshot_gui_manifest(const snapshot_gui_state & s) {
    using nlohmann::json;
    const trace_info & c = s.capture;
    json gui = {{"ctx", c.n_tokens()}, {"method", s.method}, {"layer", s.layer}, {"head", s.head},
                {"layers_spec", s.layers_spec}, {"capture_seconds", s.capture_seconds}};
    json inputs = {{"model", {{"path", s.model_path}, {"id", c.model_id}, {"sha256", c.model_sha256}}},
                   {"text", {{"spec", c.text_spec}, {"sha256", c.text_sha256}}}};
    json metrics = {{"capture_tokens", c.n_tokens()}, {"capture_layers", c.layers},
                    {"token_ids_sha256", sha256_hex(c.token_ids.data(), c.token_ids.size() * sizeof(int32_t))}};
    return {{"gui", gui}, {"inputs", inputs}, {"methods", json::array({s.method})}, {"trained", json::array()},
            {"seeds", json::object()}, {"threads", s.threads}, {"metrics", metrics}};
}

} // namespace attnlab
