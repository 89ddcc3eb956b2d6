// Snapshots (core/lab/snapshot.h, docs/snapshots.md): list the snapshots
// under a directory, open one (checked by snapshot_read: every file's size
// and sha256) with its manifest summary and figures, restore its experiment
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

#include "../file_browser.h"
#include "base/data_path.h"
#include "base/sha256.h"
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
    json manifest;
    std::vector<figure> figures;
};

std::string jstr(const json & j, const char * key, const std::string & def = "") {
    if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
    return def;
}

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
    const char * id() const override { return "snapshots"; }
    const char * title() const override { return "Snapshots"; }

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
        for (const auto & t : st_.tasks.snapshot()) {
            if (t.group != "snapshot") continue;
            char buf[160];
            std::snprintf(buf, sizeof buf, "%s %.0f%%", t.stage.c_str(), t.fraction * 100);
            ImGui::ProgressBar(float(t.fraction), ImVec2(420, 0), buf);
            ImGui::SameLine();
            if (ImGui::SmallButton("Cancel")) st_.tasks.cancel(t.id);
        }
        if (view_shots_running()) ImGui::TextColored(ImVec4(1, 0.85f, 0.4f, 1), "taking a PNG of every view...");
        if (!error_.empty()) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s", error_.c_str());
        for (const auto & h : st_.tasks.history()) {   // the newest snapshot task, if it failed
            if (h.group != "snapshot" && h.group != "snapshot_open") continue;
            if (h.state == task_state::failed) ImGui::TextColored(ImVec4(1, 0.45f, 0.4f, 1), "%s: %s", h.name.c_str(), h.error.c_str());
            break;
        }
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
                             o->manifest = attnlab::snapshot_read(dir);
                             p.report(0.6, "decoding figures");
                             for (const auto & f : o->manifest["files"]) {
                                 std::string rel = jstr(f, "path");
                                 if (rel.size() < 4 || rel.substr(rel.size() - 4) != ".png" || o->figures.size() >= 16) continue;
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
        const json & m = o.manifest;
        const json prog = m.value("program", json::object());
        const json inputs = m.value("inputs", json::object());
        const json sc = m.value("scenario", json::object());
        ImGui::TextColored(ImVec4(0.55f, 0.8f, 1.0f, 1), "%s", fs::path(o.dir).filename().string().c_str());
        ImGui::SameLine();
        ImGui::TextDisabled("verified: every listed file's size and sha256 match the manifest");
        ImGui::Text("program %s %s, commit %.12s, %s build; created %s", jstr(prog, "name").c_str(), jstr(prog, "version").c_str(),
                    jstr(prog, "git_commit").c_str(), jstr(prog, "build_type").c_str(), jstr(m, "created_utc").c_str());
        if (sc.is_object() && !sc.empty()) ImGui::Text("scenario: %s (%s)%s", jstr(sc, "title").c_str(), jstr(sc, "kind").c_str(),
                                                       m.value("small", false) ? ", small" : "");
        else if (m.contains("gui")) ImGui::Text("GUI export (no scenario: restore re-captures, verify cannot re-run it)");
        json model = inputs.value("model", json::object()), text = inputs.value("text", json::object());
        if (!model.empty()) ImGui::Text("model %s  sha256 %.16s", jstr(model, "path", jstr(model, "id")).c_str(), jstr(model, "sha256").c_str());
        if (!text.empty()) ImGui::Text("text %s  sha256 %.16s", jstr(text, "spec").c_str(), jstr(text, "sha256").c_str());
        if (model.empty() && sc.is_object() && sc.contains("source")) {
            ImGui::Text("presets: model %s, hardware %s (no model file: nothing to restore)", jstr(sc, "source").c_str(),
                        jstr(sc, "hw", "-").c_str());
        }
        std::string methods;
        for (const auto & x : m.value("methods", json::array())) methods += (methods.empty() ? "" : ", ") + (x.is_string() ? x.get<std::string>() : x.dump());
        ImGui::TextWrapped("methods: %s", methods.empty() ? "(none)" : methods.c_str());
        ImGui::Text("threads %d, %zu files", m.value("threads", 0), m.value("files", json::array()).size());
        ImGui::BeginDisabled(restore_target(m).empty());
        if (ImGui::Button("Restore this experiment")) restore();
        ImGui::EndDisabled();
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("opens its model (if another), sets text, ctx and method, captures");
        ImGui::SameLine();
        caption("%s", restore_target(m).c_str());
        // Metrics: the deterministic numbers verify compares, flattened.
        if (ImGui::CollapsingHeader("metrics", ImGuiTreeNodeFlags_DefaultOpen)) {
            // One line per top-level key, nested values compact and cut at 300 characters.
            ImGui::BeginChild("metrics", ImVec2(0, 110), true);
            const json metrics = m.value("metrics", json::object());   // items() must not outlive it
            for (const auto & kv : metrics.items()) {
                std::string v = kv.value().is_string() ? kv.value().get<std::string>() : kv.value().dump();
                if (v.size() > 300) v = v.substr(0, 300) + " ... (" + std::to_string(v.size()) + " characters)";
                ImGui::TextWrapped("%s: %s", kv.key().c_str(), v.c_str());
            }
            ImGui::EndChild();
        }
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

    // What restore will set, or "" when the manifest has no model/text to restore.
    std::string restore_target(const json & m) const {
        json inputs = m.value("inputs", json::object());
        std::string model = jstr(inputs.value("model", json::object()), "path");
        std::string text = jstr(inputs.value("text", json::object()), "spec");
        if (model.empty() || text.empty()) return "";
        int ctx = restore_ctx(m);
        std::string method = restore_method(m);
        return "restore: " + model + ", text " + text + ", ctx " + std::to_string(ctx) + ", method " + method;
    }
    static int restore_ctx(const json & m) {
        if (m.contains("gui") && m["gui"].contains("ctx")) return m["gui"]["ctx"].get<int>();
        json sc = m.value("scenario", json::object());
        if (sc.contains("ctx")) {
            const json & c = sc["ctx"];
            if (c.is_number_integer()) return c.get<int>();
            if (c.is_array() && !c.empty() && c[0].is_number_integer()) return c[0].get<int>();
        }
        return 512;
    }
    std::string restore_method(const json & m) const {
        if (m.contains("gui") && m["gui"].contains("method")) return m["gui"]["method"].get<std::string>();
        for (const auto & x : m.value("methods", json::array())) {
            // The first method a capture can show (not dense; not a file relative to the snapshot).
            if (x.is_string() && x.get<std::string>().rfind("dense", 0) != 0 && x.get<std::string>().find('=') != std::string::npos &&
                x.get<std::string>().find("params=") == std::string::npos && x.get<std::string>().find("table=") == std::string::npos)
                return x.get<std::string>();
        }
        return st_.method_spec;
    }

    void restore() {
        if (!open_) return;
        const json & m = open_->manifest;
        json inputs = m.value("inputs", json::object());
        std::string model = attnlab::scenario_resolve_path(jstr(inputs.value("model", json::object()), "path"));
        std::string text = jstr(inputs.value("text", json::object()), "spec");
        if (model.empty() || text.empty()) {
            error_ = "this snapshot names no model and text to restore";
            return;
        }
        st_.text_spec = text;
        st_.ctx = std::min(restore_ctx(m), st_.facts.valid() && st_.facts.context > 0 ? st_.facts.context : 8192);
        st_.set_method(restore_method(m));
        if (m.contains("gui")) {
            st_.layers_spec = m["gui"].value("layers_spec", std::string());
        }
        std::error_code ec;
        bool same = !st_.source_path.empty() && fs::equivalent(st_.source_path, model, ec);
        status_ = "restored " + fs::path(open_->dir).filename().string() + ": " + restore_target(m).substr(9);
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
        json gui = {{"ctx", st_.cap->info.n_tokens()}, {"method", st_.method_spec}, {"layer", st_.layer_id()},
                    {"head", st_.head}, {"layers_spec", st_.layers_spec}, {"capture_seconds", st_.capture_seconds}};
        json inputs = {{"model", {{"path", st_.source_path}, {"id", st_.cap->info.model_id}, {"sha256", st_.cap->info.model_sha256}}},
                       {"text", {{"spec", st_.cap->info.text_spec}, {"sha256", st_.cap->info.text_sha256}}}};
        json metrics = {{"capture_tokens", st_.cap->info.n_tokens()}, {"capture_layers", st_.cap->info.layers},
                        {"token_ids_sha256", attnlab::sha256_hex(std::string(
                                                 reinterpret_cast<const char *>(st_.cap->info.token_ids.data()),
                                                 st_.cap->info.token_ids.size() * sizeof(int32_t)))}};
        status_ = "exporting to " + out_dir;
        view_shot_request r;
        r.dir = shots;
        r.done = [this, out_dir, shots, gui, inputs, metrics](const std::vector<std::string> & paths, const std::string & err) {
            if (!err.empty()) error_ = "view PNGs: " + err;
            std::string method = gui["method"];
            st_.tasks.submit("export snapshot " + fs::path(out_dir).filename().string(), "snapshot",
                             [this, out_dir, shots, gui, inputs, metrics, paths, method](attnlab::job_progress & p) {
                                 p.report(0.1, "staging");
                                 json manifest = {{"gui", gui}, {"inputs", inputs}, {"methods", json::array({method})},
                                                  {"trained", json::array()}, {"seeds", json::object()},
                                                  {"threads", omp_get_max_threads()}, {"metrics", metrics}};
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
            attnlab::scenario s = attnlab::scenario_load(path, small);
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
