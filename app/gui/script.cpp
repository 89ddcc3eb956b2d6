#include "script.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <imgui.h>

#include "app_state.h"
#include "base/atomic_write.h"
#include "chart_export.h"
#include "frame_ui.h"
#include "screenshot.h"
#include "view_registry.h"

namespace attnlab_gui {

std::vector<script_line> script_load(const std::string & path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot read the script");
    std::vector<script_line> out;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        auto hash = line.find('#');
        if (hash != std::string::npos) line.resize(hash);
        std::istringstream ss(line);
        script_line s;
        s.line_no = n;
        if (!(ss >> s.cmd)) continue;
        std::string a;
        while (ss >> a) s.args.push_back(a);
        auto p = line.find(s.cmd) + s.cmd.size();
        s.rest = line.substr(p);
        s.rest.erase(0, s.rest.find_first_not_of(" \t"));
        s.rest.erase(s.rest.find_last_not_of(" \t\r") + 1);
        out.push_back(s);
    }
    return out;
}


script_runner::script_runner(std::string path, std::vector<script_line> lines)
    : path_(std::move(path)), lines_(std::move(lines)) {}

void script_runner::fail(const script_line & l, const std::string & msg) {
    std::fprintf(stderr, "script %s:%d: %s: %s\n", path_.c_str(), l.line_no, l.cmd.c_str(), msg.c_str());
    exit_code_ = 1;
}

bool script_runner::finished(const script_context & cx) const {
    if (!active()) return false;
    return quit_ || (pc_ >= lines_.size() && !cx.shots.pending() && !waiting_ && !view_shots_running());
}

// Whether the next command may run now: no screenshot pending and any wait over.
bool script_runner::ready(double now, script_context & cx) {
    if (pc_ >= lines_.size() || cx.shots.pending() || view_shots_running() || quit_) return false;
    if (!waiting_) return true;
    if (now < wait_until_) return false;
    if (await_box_) {
        if (!frame_method_box_ready() && now <= wait_limit_) return false;
        if (!frame_method_box_ready()) fail(lines_[pc_ - 1], "the method box did not open by the time limit");
        await_box_ = false;
        waiting_ = false;
        return true;
    }
    if (!await_path_.empty()) {   // "await": a driver's go file, or the limit
        std::error_code ec;
        if (std::filesystem::exists(await_path_, ec)) {
            std::filesystem::remove(await_path_, ec);
        } else if (now <= wait_limit_) {
            return false;
        } else {
            fail(lines_[pc_ - 1], "no " + await_path_ + " by the time limit");
        }
        await_path_.clear();
        waiting_ = false;
        return true;
    }
    if (wait_limit_ > 0 && cx.st.tasks.busy()) {  // "wait": until idle
        if (now <= wait_limit_) return false;
        fail(lines_[pc_ - 1], "tasks still running at the time limit");
        cx.st.tasks.cancel_all();
    }
    waiting_ = false;
    return true;
}

void script_runner::step(double now, script_context & cx) {
    if (!ready(now, cx)) return;
    const script_line & l = lines_[pc_++];
    std::printf("script: %s %s\n", l.cmd.c_str(), l.rest.c_str());
    std::fflush(stdout);
    try {
        run(l, now, cx);
    } catch (const std::exception & e) {
        fail(l, e.what());
    }
    cx.st.bus.dispatch();
}

void script_runner::run(const script_line & l, double now, script_context & cx) {
    app_state & st = cx.st;
    const auto & a = l.args;
    if (l.cmd == "open") st.open_path(l.rest);
    else if (l.cmd == "text") st.text_spec = l.rest;
    else if (l.cmd == "ctx") st.ctx = std::stoi(a.at(0));
    else if (l.cmd == "layers") st.layers_spec = l.rest;
    else if (l.cmd == "capture") st.start_capture();
    else if (l.cmd == "cancel") st.cancel_capture();
    else if (l.cmd == "wait") {
        waiting_ = true;
        wait_until_ = now + 0.05;
        wait_limit_ = now + (a.empty() ? 600.0 : std::stod(a[0]));
    } else if (l.cmd == "sleep") {
        waiting_ = true;
        wait_until_ = now + std::stod(a.at(0));
        wait_limit_ = 0;
    } else if (l.cmd == "view") {
        if (!cx.views.select(l.rest)) fail(l, "no view '" + l.rest + "'");
    } else if (l.cmd == "layer") st.select_head(std::stoi(a.at(0)), st.head);
    else if (l.cmd == "head") st.select_head(st.layer_index, std::stoi(a.at(0)));
    else if (l.cmd == "method") st.set_method(l.rest);
    else if (l.cmd == "mouse") cx.move_mouse(std::stod(a.at(0)), std::stod(a.at(1)));
    else if (l.cmd == "screenshot") cx.shots.request((std::filesystem::path(cx.shot_dir) / l.rest).string());
    else if (l.cmd == "export_charts") chart_export_all((std::filesystem::path(cx.shot_dir) / l.rest).string());
    else if (l.cmd == "signal") attnlab::write_file_atomic((std::filesystem::path(cx.shot_dir) / (a.at(0) + ".signal")).string(), "1\n");
    else if (l.cmd == "await") {
        waiting_ = true;
        wait_until_ = now;
        wait_limit_ = now + (a.size() > 1 ? std::stod(a[1]) : 120.0);
        await_path_ = (std::filesystem::path(cx.shot_dir) / (a.at(0) + ".go")).string();
    } else if (l.cmd == "wait_method_box") {
        waiting_ = true;
        wait_until_ = now;
        wait_limit_ = now + (a.empty() ? 30.0 : std::stod(a[0]));
        await_box_ = true;
    } else if (l.cmd == "dump_layout")
        attnlab::write_file_atomic((std::filesystem::path(cx.shot_dir) / l.rest).string(), frame_layout_json(cx.views));
    else if (l.cmd == "expect") expect(l, cx);
    else if (l.cmd == "quit") quit_ = true;
    else if (!cx.views.shown().on_script(l.cmd, a)) fail(l, "unknown command for view " + std::string(cx.views.shown_id()));
}

void script_runner::expect(const script_line & l, script_context & cx) {
    const app_state & st = cx.st;
    const auto & a = l.args;
    if (a.size() == 2 && a[0] == "capture_tokens") {
        int want = std::stoi(a[1]);
        int got = st.cap ? st.cap->info.n_tokens() : 0;
        if (got != want) fail(l, "capture has " + std::to_string(got) + " tokens, want " + a[1]);
    } else if (a.size() >= 3 && a[0] == "last" && a[2] == "cancelled") {
        bool ok = false;
        for (const auto & h : st.tasks.history()) {
            if (h.group == a[1]) {
                ok = h.state == task_state::cancelled;
                break;
            }
        }
        if (!ok) fail(l, "the last " + a[1] + " task was not cancelled");
    } else if (a.size() == 2 && a[0] == "view") {
        if (cx.views.shown_id() != a[1]) fail(l, "current view is " + std::string(cx.views.shown_id()) + ", want " + a[1]);
    } else if (a.size() == 2 && (a[0] == "head" || a[0] == "layer")) {
        const int got = a[0] == "head" ? st.head : st.layer_index;
        if (got != std::stoi(a[1])) fail(l, a[0] + " is " + std::to_string(got) + ", want " + a[1]);
    } else if (a.size() >= 2 && a[0] == "method") {
        const std::string want = l.rest.substr(l.rest.find("method") + 6 + 1);
        if (st.method_spec != want) fail(l, "method is '" + st.method_spec + "', want '" + want + "'");
    } else if (a.size() == 2 && a[0] == "visible") {
        const int i = cx.views.index_of(a[1]);
        if (i < 0 || !cx.views.visible(size_t(i))) fail(l, "view " + a[1] + " was not drawn in the last frame");
    } else if (a.size() == 3 && a[0] == "side_by_side") {
        const int i = cx.views.index_of(a[1]), j = cx.views.index_of(a[2]);
        if (i < 0 || j < 0 || !cx.views.visible(size_t(i)) || !cx.views.visible(size_t(j)))
            fail(l, "both views must be drawn");
        else {
            const view_rect r = cx.views.rect(size_t(i)), q = cx.views.rect(size_t(j));
            const bool apart = r.x + r.w <= q.x + 1 || q.x + q.w <= r.x + 1 || r.y + r.h <= q.y + 1 || q.y + q.h <= r.y + 1;
            if (!apart) fail(l, "the two views overlap: they are not side by side");
        }
    } else if (a.size() == 3 && a[0] == "display") {
        const ImVec2 d = ImGui::GetIO().DisplaySize;
        if (int(d.x) != std::stoi(a[1]) || int(d.y) != std::stoi(a[2]))
            fail(l, "display is " + std::to_string(int(d.x)) + "x" + std::to_string(int(d.y)));
    } else if (a.size() == 1 && a[0] == "no_failed_tasks") {
        for (const auto & h : st.tasks.history()) {
            if (h.state == task_state::failed) fail(l, h.name + " failed: " + h.error);
        }
    } else fail(l, "unknown expectation");
}

} // namespace attnlab_gui
