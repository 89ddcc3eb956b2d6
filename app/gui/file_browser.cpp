#include "file_browser.h"
#include "base/data_path.h"

#include <algorithm>
#include <filesystem>

#include <imgui.h>

#include "model/model_files.h"
#include "plot_math.h"

namespace attnlab_gui {

namespace fs = std::filesystem;

file_browser::file_browser(std::string start_dir) { set_dir(start_dir); }

void file_browser::set_dir(const std::string & d) {
    std::error_code ec;
    fs::path p = fs::weakly_canonical(fs::path(d), ec);
    dir_ = ec ? d : p.string();
    selected_ = -1;
    refresh();
}

void file_browser::refresh() {
    entries_.clear();
    error_.clear();
    std::error_code ec;
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
        entry e;
        e.name = it->path().filename().string();
        if (e.name.empty() || e.name[0] == '.') continue;
        e.is_dir = it->is_directory(ec);
        std::string path = it->path().string();
        if (e.is_dir) {
            if (fs::exists(it->path() / "config.json", ec)) e.kind = "HF checkpoint";
        } else {
            e.size = it->file_size(ec);
            std::string ext = it->path().extension().string();
            if (ext == ".gguf" || ext == ".safetensors") {
                attnlab::file_kind k = attnlab::file_kind_detect(path);
                e.kind = k == attnlab::file_kind::gguf ? "GGUF" : k == attnlab::file_kind::trace ? "trace" : "safetensors";
            } else if (ext == ".json" || ext == ".txt") {
                e.kind = ext.substr(1);
            } else {
                continue;  // only what AttnLab can open
            }
        }
        entries_.push_back(e);
    }
    if (ec) error_ = dir_ + ": " + ec.message();
    std::sort(entries_.begin(), entries_.end(), [](const entry & a, const entry & b) {
        if (a.is_dir != b.is_dir) return a.is_dir;
        return a.name < b.name;
    });
}

bool file_browser::draw(float height) {
    bool open = false;
    ImGui::TextUnformatted(dir_.c_str());
    if (ImGui::SmallButton("Up")) set_dir(fs::path(dir_).parent_path().string());
    ImGui::SameLine();
    if (ImGui::SmallButton("Refresh")) refresh();
    ImGui::SameLine();
    if (ImGui::SmallButton("assets/models")) set_dir(attnlab::data_path("assets/models"));
    if (!error_.empty()) ImGui::TextColored(ImVec4(1, 0.4f, 0.4f, 1), "%s", error_.c_str());
    if (ImGui::BeginTable("files", 3, ImGuiTableFlags_ScrollY | ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersOuter,
                          ImVec2(0, height))) {
        ImGui::TableSetupColumn("name", ImGuiTableColumnFlags_WidthStretch);
        ImGui::TableSetupColumn("kind", ImGuiTableColumnFlags_WidthFixed, 110);
        ImGui::TableSetupColumn("size", ImGuiTableColumnFlags_WidthFixed, 80);
        ImGui::TableSetupScrollFreeze(0, 1);
        ImGui::TableHeadersRow();
        std::string enter;
        for (int i = 0; i < int(entries_.size()); ++i) {
            const entry & e = entries_[i];
            ImGui::TableNextRow();
            ImGui::TableNextColumn();
            std::string label = (e.is_dir ? "[dir] " : "") + e.name;
            if (ImGui::Selectable(label.c_str(), selected_ == i,
                                  ImGuiSelectableFlags_SpanAllColumns | ImGuiSelectableFlags_AllowDoubleClick)) {
                selected_ = i;
                picked_ = (fs::path(dir_) / e.name).string();
                if (ImGui::IsMouseDoubleClicked(0)) {
                    if (e.is_dir && e.kind.empty()) enter = picked_;
                    else open = true;
                }
            }
            ImGui::TableNextColumn();
            ImGui::TextUnformatted(e.kind.c_str());
            ImGui::TableNextColumn();
            if (!e.is_dir) ImGui::TextUnformatted(format_si(double(e.size), "B").c_str());
        }
        ImGui::EndTable();
        if (!enter.empty()) set_dir(enter);
    }
    return open;
}

} // namespace attnlab_gui
