#include "script.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "app_state.h"
#include "chart_export.h"
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
    } else if (a.size() == 1 && a[0] == "no_failed_tasks") {
        for (const auto & h : st.tasks.history()) {
            if (h.state == task_state::failed) fail(l, h.name + " failed: " + h.error);
        }
    } else fail(l, "unknown expectation");
}

} // namespace attnlab_gui
