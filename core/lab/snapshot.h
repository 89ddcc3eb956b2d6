#pragma once
// Snapshots: a directory holding everything needed to re-run an experiment and
// check that it reproduces (format: docs/snapshots.md).
//
// manifest.json, schema "attnlab.snapshot/1":
// { "schema", "program": {"name","version","git_commit","build_type"}, "created_utc", "host": {"cpu"},
//   "scenario": <the scenario JSON as run, after defaults/overrides>,
//   "inputs": {"model": {"path","id","sha256"}, "text": {"spec","sha256"}, "calib_text": {...} (optional)},
//   "methods": [spec...], "trained": [{"role","file","sha256","calib_text_sha256"}], "seeds": {...}, "threads": N,
//   "metrics": <JSON object; what verify compares>, "files": [{"path","bytes","sha256"}] }
//
// Atomicity: a writer stages everything in a hidden sibling directory
// (".NAME.staging-PID-RAND"), writes manifest.json last, fsyncs, and renames
// the whole directory onto NAME. A crash leaves either no NAME (or the old
// snapshot, when replacing one) or the complete new one; snapshot_read refuses
// staging directories, missing/invalid manifests, and any file whose size or
// sha256 differs from the manifest, or that the manifest does not list.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/dir_lock.h"
#include "io/trace.h"

namespace attnlab {

class job_progress;

constexpr const char * snapshot_schema = "attnlab.snapshot/1";

struct snapshot_file {
    std::string path;            // relative to the snapshot directory, '/'-separated
    uint64_t bytes = 0;
    std::string sha256;
};

class snapshot_writer {
public:
    // input_error if final_dir exists and is neither an empty directory nor a
    // snapshot, or is a snapshot and overwrite is false, or when another
    // writer holds it (base/dir_lock.h: NAME.attnlab-lock beside it, held
    // until the writer is destroyed). Removes staging directories of the same
    // name left by processes that no longer run.
    explicit snapshot_writer(const std::string & final_dir, bool overwrite = false);
    ~snapshot_writer();          // removes the staging dir unless committed
    snapshot_writer(const snapshot_writer &) = delete;
    snapshot_writer & operator=(const snapshot_writer &) = delete;

    const std::string & final_dir() const { return final_dir_; }
    const std::string & staging_dir() const { return staging_; }
    // Where to write the file `rel` inside the staging dir (creates parent
    // dirs). input_error for absolute paths, "..", or "manifest.json".
    std::string path(const std::string & rel);
    // Copies src in as `rel` (e.g. a trained gate file).
    void add_copy(const std::string & src, const std::string & rel);
    // Hashes every staged file into "files", fills "schema", "program" and
    // (when absent) "created_utc" and "host", writes manifest.json last, fsyncs, and
    // renames onto final_dir (atomically swapping out an existing snapshot).
    // Returns the manifest as written.
    nlohmann::json commit(nlohmann::json manifest);
    bool committed() const { return committed_; }

private:
    std::unique_ptr<dir_lock> lock_;   // one writer per snapshot directory
    std::string final_dir_, staging_;
    bool overwrite_ = false, committed_ = false;
};

// Reads and checks DIR/manifest.json and every listed file (present, size,
// sha256; no unlisted files). input_error(DIR/FILE, FIELD, msg) otherwise.
nlohmann::json snapshot_read(const std::string & dir);
// Hashes of the files under dir (recursive, sorted by path, manifest.json excluded).
std::vector<snapshot_file> snapshot_list_files(const std::string & dir);
// {"name","version","git_commit","build_type"} baked in at build time.
nlohmann::json snapshot_program_info();

// What a manifest says, read leniently (absent or mistyped fields come back
// empty): the app's Snapshots view shows this, and restores from it. A
// snapshot exported by the app carries a "gui" object (ctx, method, layer,
// head, layers_spec) and no scenario.
struct snapshot_summary {
    std::string program_name, program_version, git_commit, build_type, created_utc;
    bool has_scenario = false, small = false, gui_export = false;
    std::string scenario_title, scenario_kind;
    std::string preset_source, preset_hw;     // scenario presets ("source", "hw"): a model with no file
    std::string model, model_sha256;          // inputs.model: its path, else its id
    std::string text_spec, text_sha256;       // inputs.text
    std::vector<std::string> methods;         // specs (non-strings as JSON text)
    int threads = 0;
    size_t n_files = 0;
    std::vector<std::pair<std::string, std::string>> metrics;  // top-level key, value text (strings bare, rest compact JSON)
    std::vector<std::string> figures;         // listed .png files, relative paths, in manifest order
    // Restoring the experiment: empty model or text when there is nothing to restore.
    std::string restore_model, restore_text;  // inputs.model.path, inputs.text.spec
    int restore_ctx = 512;                    // gui.ctx, else scenario.ctx (or its first), else 512
    std::string restore_method;               // gui.method, else the first method a capture can show; "" if none
    std::string restore_layers_spec;          // gui.layers_spec
    bool can_restore() const { return !restore_model.empty() && !restore_text.empty(); }
};
snapshot_summary snapshot_summarize(const nlohmann::json & manifest);

// The experiment as the app shows it, recorded as a snapshot manifest (before
// snapshot_writer::commit adds program, files and hashes): the capture's
// provenance and token ids (their sha256), the selected head and method.
struct snapshot_gui_state {
    std::string model_path;      // the file the app opened
    trace_info capture;          // the capture's info (model id/sha, text, layers, token ids)
    int layer = 0, head = 0, threads = 1;
    std::string method, layers_spec;
    double capture_seconds = 0.0;
};
nlohmann::json snapshot_gui_manifest(const snapshot_gui_state & s);

// Exact comparison of recorded and re-measured metrics: numbers must be
// bit-identical doubles (or equal integers), strings/bools/null equal, the
// same keys and array lengths. One entry per mismatch; path is a JSON pointer.
struct snapshot_diff {
    std::string path;
    std::string recorded, measured;   // JSON text, "<missing>" when absent
};
std::vector<snapshot_diff> snapshot_compare_metrics(const nlohmann::json & recorded, const nlohmann::json & measured);

// Re-runs a snapshot. The runner runs a scenario into out_dir (which does not
// exist yet) and leaves a snapshot there (the scenario runner,
// lab/scenario.h). verify sets the OpenMP thread count to the recorded
// "threads" for the re-run and restores it after.
using snapshot_runner =
    std::function<void(const nlohmann::json & scenario, const std::string & out_dir, job_progress * progress)>;

// The largest thread count a manifest may record.
constexpr int64_t k_snapshot_max_threads = 4096;

struct snapshot_verify_result {
    nlohmann::json recorded;                 // manifest of the snapshot
    nlohmann::json rerun;                    // manifest of the re-run
    std::vector<snapshot_diff> diffs;        // metrics and input hashes that differ (verify fails)
    std::vector<std::string> files_differ;   // files present in both with other bytes (informational)
    std::string rerun_dir;                   // kept only when keep_dir was given
    int threads = 0;                         // threads the re-run used (recorded, capped to the machine)
    std::vector<std::string> notes;          // e.g. the thread count was capped
    bool ok() const { return diffs.empty(); }
};
// keep_dir: where the re-run goes and stays ("" = a temporary directory,
// removed afterwards).
snapshot_verify_result snapshot_verify(const std::string & dir, const snapshot_runner & runner,
                                       const std::string & keep_dir = "", job_progress * progress = nullptr);

} // namespace attnlab
