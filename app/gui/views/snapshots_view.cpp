// Snapshots (core/lab/snapshot.h, docs/snapshots.md): list the snapshots
// under a directory, open one (checked by snapshot_read: every file's size
// and sha256) with its manifest summary (snapshot_summarize) and figures, restore its experiment
// (model, text, ctx, method -> the normal capture path), export the current
// experiment as a snapshot with every view as PNG, and run a scenario file
// (core/lab/scenario.h) into a new snapshot as a background task.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <omp.h>
#include <unistd.h>

#include <imgui.h>
#include <imgui_stdlib.h>

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "../../view_ids.h"
#include "../file_browser.h"
#include "base/data_path.h"
#include "lab/scenario.h"
#include "lab/snapshot.h"
#include "view.h"

namespace attnlab_gui {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct figure {
    std::string path;          // relative to the snapshot
    int w = 0, h = 0;
    std::vector<uint32_t> rgba;
    std::shared_ptr<gl_texture> tex;
};

struct opened_snapshot {
    std::string dir;
    attnlab::snapshot_summary sum;
    std::vector<figure> figures;
};

std::string utc_stamp() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char b[32];
    std::strftime(b, sizeof b, "%Y%m%d-%H%M%S", &tm);
    return b;
}

class snapshots_view : public view {
public:
    explicit snapshots_view(app_state & s)
        : view(s), root_(attnlab::data_path("runs")), browser_(attnlab::data_root()) {
        if (!fs::exists(root_)) root_ = (fs::current_path() / "runs").string();
        scan();
        st_.bus.subscribe(event_kind::model_loaded, [this](const event &) {
            if (restore_pending_) {   // a trace is its own capture: nothing to start
                restore_pending_ = false;
                if (st_.model) st_.start_capture();
            }
        });
    }

    bool on_script(const std::string & cmd, const std::vector<std::string> & a) override {
        if (cmd == "snapshot_root" && a.size() == 1) { root_ = a[0]; scan(); return true; }
        if (cmd == "snapshot_export" && a.size() == 1) { export_current(a[0]); return true; }
        if (cmd == "snapshot_open" && a.size() == 1) { open(a[0]); return true; }
        if (cmd == "snapshot_restore") { restore(); return true; }
        if (cmd == "scenario_run" && a.size() >= 1) { run_scenario(a[0], a.size() < 2 || a[1] != "full"); return true; }
        if (cmd == "expect_snapshot_ok") {
            if (!open_ || !error_.empty()) throw std::runtime_error("no snapshot open: " + error_);
            return true;
        }
        return false;
    }

    void drawContent() override {
        ImGui::TextUnformatted("snapshots in");
        ImGui::SameLine();
        ImGui::SetNextItemWidth(420);
        if (ImGui::InputText("##root", &root_, ImGuiInputTextFlags_EnterReturnsTrue)) scan();
        ImGui::SameLine();
        if (ImGui::Button("Browse...")) show_browser_ = !show_browser_;
        ImGui::SameLine();
        if (ImGui::Button("Rescan")) scan();
        ImGui::SameLine();
        bool can_export = st_.cap != nullptr && !view_shots_running() && !st_.tasks.busy("snapshot");
        ImGui::BeginDisabled(!can_export);
        if (ImGui::Button("Export current experiment + every view as PNG")) {
            export_current((fs::path(root_) / ("gui-" + utc_stamp())).string());
        }
        ImGui::EndDisabled();
        if (show_browser_) {
            if (browser_.draw(160)) {
                std::string p = browser_.picked();
                root_ = fs::is_directory(p) ? p : fs::path(p).parent_path().string();
                scan();
                show_browser_ = false;
            }
            if (ImGui::Button("Use this directory")) {
                root_ = browser_.dir();
                scan();
                show_browser_ = false;
            }
        }
        task_progress_bars(st_, {"snapshot"}, 420);
        if (view_shots_running()) ImGui::TextColored(ImVec4(1, 0.85f, 0.4f, 1), "taking a PNG of every view...");
        if (!error_.empty()) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", error_.c_str());
        task_failure_line(st_, {"snapshot", "snapshot_open"}, true);   // the newest snapshot task, if it failed
        if (!status_.empty()) caption("%s", status_.c_str());

        ImVec2 avail = ImGui::GetContentRegionAvail();
        ImGui::BeginChild("list", ImVec2(std::min(320.0f, avail.x * 0.25f), 0), true);
        ImGui::TextDisabled("snapshots (%zu)", entries_.size());
        for (const auto & e : entries_) {
            bool sel = open_ && open_->dir == e;
            if (ImGui::Selectable(fs::path(e).filename().string().c_str(), sel)) open(e);
            if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", e.c_str());
        }
        ImGui::Separator();
        ImGui::TextDisabled("scenarios (scenarios/*.json)");
        ImGui::Checkbox("small (CI size)", &small_);
        for (const auto & sc : scenarios_) {
            ImGui::PushID(sc.c_str());
            bool busy = st_.tasks.busy("snapshot");
            ImGui::BeginDisabled(busy);
            if (ImGui::SmallButton("run")) run_scenario(sc, small_);
            ImGui::EndDisabled();
            ImGui::SameLine();
            ImGui::TextUnformatted(fs::path(sc).stem().string().c_str());
            ImGui::PopID();
        }
        ImGui::EndChild();
        ImGui::SameLine();
        ImGui::BeginChild("detail", ImVec2(0, 0), true);
        if (open_) draw_detail(*open_);
        else caption("pick a snapshot on the left (attnlab-cli run SCENARIO --out DIR writes one; so does Export)");
        ImGui::EndChild();
    }

private:
    void scan() {
        entries_.clear();
        scenarios_.clear();
        std::error_code ec;
        for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
            std::string name = it->path().filename().string();
            if (name.empty() || name[0] == '.') continue;   // staging directories are hidden
            if (it->is_directory(ec) && fs::exists(it->path() / "manifest.json", ec)) entries_.push_back(it->path().string());
        }
        std::sort(entries_.begin(), entries_.end());
        std::string sdir = attnlab::data_path("scenarios");
        for (fs::directory_iterator it(sdir, ec), end; !ec && it != end; it.increment(ec)) {
            if (it->path().extension() == ".json") scenarios_.push_back(it->path().string());
        }
        std::sort(scenarios_.begin(), scenarios_.end());
    }

    void open(const std::string & dir) {
        error_.clear();
        st_.tasks.submit("open snapshot " + fs::path(dir).filename().string(), "snapshot_open",
                         [this, dir](attnlab::job_progress & p) {
                             p.report(0.1, "checking every file (sha256)");
                             auto o = std::make_shared<opened_snapshot>();
                             o->dir = dir;
                             o->sum = attnlab::snapshot_summarize(attnlab::snapshot_read(dir));
                             p.report(0.6, "decoding figures");
                             for (const std::string & rel : o->sum.figures) {
                                 if (o->figures.size() >= 16) break;
                                 figure fig;
                                 fig.path = rel;
                                 int n = 0;
                                 unsigned char * px = stbi_load((fs::path(dir) / rel).string().c_str(), &fig.w, &fig.h, &n, 4);
                                 if (!px) continue;
                                 fig.rgba.resize(size_t(fig.w) * fig.h);
                                 std::memcpy(fig.rgba.data(), px, fig.rgba.size() * 4);
                                 stbi_image_free(px);
                                 o->figures.push_back(std::move(fig));
                             }
                             return apply_fn([this, o]() {
                                 for (auto & f : o->figures) {   // GL calls: main thread only
                                     f.tex = std::make_shared<gl_texture>();
                                     f.tex->upload(f.rgba.data(), f.w, f.h);
                                     f.rgba.clear();
                                 }
                                 open_ = o;
                                 fig_sel_ = 0;
                             });
                         });
    }

    void draw_detail(const opened_snapshot & o) {
        const attnlab::snapshot_summary & m = o.sum;
        ImGui::TextColored(ImVec4(0.55f, 0.8f, 1.0f, 1), "%s", fs::path(o.dir).filename().string().c_str());
        ImGui::SameLine();
        ImGui::TextDisabled("verified: every listed file's size and sha256 match the manifest");
        ImGui::Text("program %s %s, commit %.12s, %s build; created %s", m.program_name.c_str(), m.program_version.c_str(),
                    m.git_commit.c_str(), m.build_type.c_str(), m.created_utc.c_str());
        if (m.has_scenario) ImGui::Text("scenario: %s (%s)%s", m.scenario_title.c_str(), m.scenario_kind.c_str(), m.small ? ", small" : "");
        else if (m.gui_export) ImGui::Text("GUI export (no scenario: restore re-captures, verify cannot re-run it)");
        if (!m.model.empty()) ImGui::Text("model %s  sha256 %.16s", m.model.c_str(), m.model_sha256.c_str());
        if (!m.text_spec.empty()) ImGui::Text("text %s  sha256 %.16s", m.text_spec.c_str(), m.text_sha256.c_str());
        if (m.model.empty() && !m.preset_source.empty()) {
            ImGui::Text("presets: model %s, hardware %s (no model file: nothing to restore)", m.preset_source.c_str(),
                        m.preset_hw.c_str());
        }
        std::string methods;
        for (const auto & x : m.methods) methods += (methods.empty() ? "" : ", ") + x;
        ImGui::TextWrapped("methods: %s", methods.empty() ? "(none)" : methods.c_str());
        ImGui::Text("threads %d, %zu files", m.threads, m.n_files);
        ImGui::BeginDisabled(!m.can_restore());
        if (ImGui::Button("Restore this experiment")) restore();
        ImGui::EndDisabled();
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("opens its model (if another), sets text, ctx and method, captures");
        ImGui::SameLine();
        caption("%s", m.can_restore() ? ("restore: " + restore_target(m)).c_str() : "");
        // Metrics: the deterministic numbers verify compares, flattened.
        if (ImGui::CollapsingHeader("metrics", ImGuiTreeNodeFlags_DefaultOpen)) {
            // One line per top-level key, nested values compact and cut at 300 characters.
            ImGui::BeginChild("metrics", ImVec2(0, 110), true);
            for (const auto & kv : m.metrics) {
                std::string v = kv.second;
                if (v.size() > 300) v = v.substr(0, 300) + " ... (" + std::to_string(v.size()) + " characters)";
                ImGui::TextWrapped("%s: %s", kv.first.c_str(), v.c_str());
            }
            ImGui::EndChild();
        }
        draw_figures(o);
    }

    void draw_figures(const opened_snapshot & o) {
        if (o.figures.empty()) {
            caption("no figures in this snapshot");
            return;
        }
        ImGui::Text("figures (%zu):", o.figures.size());
        for (size_t i = 0; i < o.figures.size(); ++i) {
            ImGui::SameLine();
            if (ImGui::RadioButton(fs::path(o.figures[i].path).stem().string().c_str(), fig_sel_ == int(i))) fig_sel_ = int(i);
        }
        fig_sel_ = std::min(fig_sel_, int(o.figures.size()) - 1);
        const figure & f = o.figures[fig_sel_];
        ImVec2 av = ImGui::GetContentRegionAvail();
        float s = std::min(av.x / f.w, (av.y - 4) / f.h);
        s = std::min(s, 1.0f);
        if (f.tex && s > 0) ImGui::Image(f.tex->id(), ImVec2(f.w * s, f.h * s));
    }

    // The method a restore sets: the manifest's, else the current one.
    std::string restore_method(const attnlab::snapshot_summary & m) const {
        return m.restore_method.empty() ? st_.method_spec : m.restore_method;
    }
    // What restore will set.
    std::string restore_target(const attnlab::snapshot_summary & m) const {
        return m.restore_model + ", text " + m.restore_text + ", ctx " + std::to_string(m.restore_ctx) + ", method " +
               restore_method(m);
    }

    void restore() {
        if (!open_) return;
        const attnlab::snapshot_summary & m = open_->sum;
        if (!m.can_restore()) {
            error_ = "this snapshot names no model and text to restore";
            return;
        }
        std::string model = attnlab::scenario_resolve_path(m.restore_model);
        st_.text_spec = m.restore_text;
        st_.ctx = std::min(m.restore_ctx, st_.facts.valid() && st_.facts.context > 0 ? int(st_.facts.context) : 8192);
        st_.set_method(restore_method(m));
        if (m.gui_export) st_.layers_spec = m.restore_layers_spec;
        std::error_code ec;
        bool same = !st_.source_path.empty() && fs::equivalent(st_.source_path, model, ec);
        status_ = "restored " + fs::path(open_->dir).filename().string() + ": " + restore_target(m);
        if (same && st_.model) {
            st_.start_capture();
        } else {
            restore_pending_ = true;   // capture once the model is loaded
            st_.open_path(model);
        }
        st_.bus.publish({event_kind::open_view, 0, 0, "source"});
    }

    void export_current(const std::string & out_dir) {
        if (!st_.cap) {
            error_ = "export: nothing captured yet";
            return;
        }
        error_.clear();
        std::string shots = (fs::temp_directory_path() / ("attnlab-shots-" + utc_stamp() + "-" + std::to_string(::getpid()))).string();
        // The experiment as it stands now (main thread), for the manifest.
        attnlab::snapshot_gui_state gs;
        gs.model_path = st_.source_path;
        gs.capture = st_.cap->info;
        gs.layer = st_.layer_id();
        gs.head = st_.head;
        gs.method = st_.method_spec;
        gs.layers_spec = st_.layers_spec;
        gs.capture_seconds = st_.capture_seconds;
        status_ = "exporting to " + out_dir;
        view_shot_request r;
        r.dir = shots;
        r.done = [this, out_dir, shots, gs](const std::vector<std::string> & paths, const std::string & err) {
            if (!err.empty()) error_ = "view PNGs: " + err;
            st_.tasks.submit("export snapshot " + fs::path(out_dir).filename().string(), "snapshot",
                             [this, out_dir, shots, gs, paths](attnlab::job_progress & p) mutable {
                                 p.report(0.1, "staging");
                                 gs.threads = omp_get_max_threads();
                                 json manifest = attnlab::snapshot_gui_manifest(gs);
                                 std::error_code ec;
                                 fs::create_directories(fs::path(out_dir).parent_path(), ec);
                                 {
                                     attnlab::snapshot_writer w(out_dir, false);
                                     for (const auto & pth : paths) w.add_copy(pth, "figures/" + fs::path(pth).filename().string());
                                     p.report(0.5, "hashing and committing");
                                     manifest = w.commit(manifest);
                                 }
                                 fs::remove_all(shots, ec);
                                 return apply_fn([this, out_dir]() {
                                     status_ = "exported " + out_dir;
                                     if (fs::path(out_dir).parent_path() == fs::path(root_)) scan();
                                     open(out_dir);
                                 });
                             });
        };
        request_view_shots(std::move(r));
    }

    void run_scenario(const std::string & path, bool small) {
        std::string stem = fs::path(path).stem().string();
        std::string out = (fs::path(root_) / (stem + (small ? "-small" : ""))).string();
        error_.clear();
        status_ = "running scenario " + stem + " into " + out;
        st_.tasks.submit("scenario " + stem + (small ? " (small)" : ""), "snapshot", [this, path, small, out](attnlab::job_progress & p) {
            // The app's views: a scenario naming a view the app lacks is refused.
            attnlab::scenario s = attnlab::scenario_load(path, small, attnlab_app::view_ids());
            std::error_code ec;
            fs::create_directories(fs::path(out).parent_path(), ec);
            attnlab::scenario_run_snapshot(s, out, true, &p);
            return apply_fn([this, out]() {
                status_ = "scenario done: " + out;
                scan();
                open(out);
            });
        });
    }

    std::string root_;
    file_browser browser_;
    bool show_browser_ = false, small_ = true, restore_pending_ = false;
    std::vector<std::string> entries_, scenarios_;
    std::shared_ptr<const opened_snapshot> open_;
    int fig_sel_ = 0;
    std::string error_, status_;
};

} // namespace

std::unique_ptr<view> make_snapshots_view(app_state & s) { return std::make_unique<snapshots_view>(s); }

} // namespace attnlab_gui
