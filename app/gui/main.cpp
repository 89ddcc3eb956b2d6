// attnlab: the desktop app. GLFW window + Dear ImGui; a sidebar of views, a
// task list and a status bar. All engine work runs in task_manager workers;
// the frame loop applies finished results once per frame.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <GLFW/glfw3.h>
#include <imgui.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>


#include "base/png_write.h"
#include "app_state.h"
#include "base/data_path.h"
#include "attention/gpu_backend.h"
#include "plot.h"
#include "script.h"
#include "views/view.h"
#ifdef ATTNLAB_HAVE_CUDA
#include "cuda_register.h"   // kernels/: attnlab_cuda_register()
#endif

using namespace attnlab_gui;
namespace fs = std::filesystem;

namespace {

const char * k_default_model = "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf";

std::vector<std::string> g_dropped;  // from the GLFW drop callback, consumed by the frame loop

// Views-as-PNG jobs (request_view_shots), run one at a time by the frame loop.
struct view_shot_job {
    view_shot_request req;
    size_t index = 0, return_view = 0;
    int frames = 0;
    double started = 0;
    std::vector<std::string> written;
    std::string error;
};
std::vector<view_shot_request> g_shot_queue;
std::unique_ptr<view_shot_job> g_shot_job;

void on_drop(GLFWwindow *, int n, const char ** paths) {
    for (int i = 0; i < n; ++i) g_dropped.emplace_back(paths[i]);
}

bool save_screenshot(const std::string & path, int w, int h) {
    std::vector<unsigned char> px(size_t(w) * h * 4), rgb(size_t(w) * h * 3);
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadBuffer(GL_BACK);
    glReadPixels(0, 0, w, h, GL_RGBA, GL_UNSIGNED_BYTE, px.data());
    for (int y = 0; y < h; ++y) {  // GL rows start at the bottom
        const unsigned char * src = &px[size_t(h - 1 - y) * w * 4];
        unsigned char * dst = &rgb[size_t(y) * w * 3];
        for (int x = 0; x < w; ++x) {
            dst[3 * x + 0] = src[4 * x + 0];
            dst[3 * x + 1] = src[4 * x + 1];
            dst[3 * x + 2] = src[4 * x + 2];
        }
    }
    try {
        attnlab::png_write_rgb(path, w, h, rgb.data());
        return true;
    } catch (const std::exception & e) {
        std::fprintf(stderr, "screenshot: %s\n", e.what());
        return false;
    }
}

struct frame_stats {
    std::vector<double> busy_ms, idle_ms;  // frame work time while a task runs / otherwise
    double ui_ms = 0, render_ms = 0, swap_ms = 0;  // totals, for the breakdown line
    size_t frames = 0;
    static double pct(std::vector<double> v, double p) {
        if (v.empty()) return 0;
        std::sort(v.begin(), v.end());
        return v[std::min(v.size() - 1, size_t(p * (v.size() - 1) + 0.5))];
    }
    void report() const {
        auto line = [](const char * what, const std::vector<double> & v) {
            if (v.empty()) return;
            double s = 0;
            for (double x : v) s += x;
            std::printf("bench: frame time %s: n=%zu mean %.2f ms, p50 %.2f ms, p95 %.2f ms, max %.2f ms\n", what, v.size(),
                        s / v.size(), pct(v, 0.5), pct(v, 0.95), *std::max_element(v.begin(), v.end()));
        };
        line("during jobs", busy_ms);
        line("idle", idle_ms);
        if (frames) std::printf("bench: frame breakdown (mean): ui %.2f ms, render %.2f ms, swap %.2f ms\n", ui_ms / frames,
                                render_ms / frames, swap_ms / frames);
        std::fflush(stdout);
    }
};

void apply_style() {
    ImGui::StyleColorsDark();
    ImGuiStyle & s = ImGui::GetStyle();
    s.WindowRounding = 0;
    s.FrameRounding = 3;
    s.GrabRounding = 3;
    s.ItemSpacing = ImVec2(8, 6);
    s.Colors[ImGuiCol_WindowBg] = ImVec4(0.09f, 0.10f, 0.12f, 1);
    s.Colors[ImGuiCol_ChildBg] = ImVec4(0.11f, 0.12f, 0.14f, 1);
}

} // namespace

namespace attnlab_gui {
void request_view_shots(view_shot_request r) { g_shot_queue.push_back(std::move(r)); }
bool view_shots_running() { return g_shot_job != nullptr || !g_shot_queue.empty(); }
} // namespace attnlab_gui

int main(int argc, char ** argv) {
    std::string script_path, shot_dir = ".", open_arg;
    int win_w = 1600, win_h = 1000;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--script" && i + 1 < argc) script_path = argv[++i];
        else if (a == "--screenshot-dir" && i + 1 < argc) shot_dir = argv[++i];
        else if (a == "--size" && i + 2 < argc) { win_w = std::atoi(argv[++i]); win_h = std::atoi(argv[++i]); }
        else if (a == "--help" || a == "-h") {
            std::printf("usage: attnlab [MODEL_OR_TRACE] [--script FILE --screenshot-dir DIR] [--size W H]\n"
                        "  no arguments: opens %s and captures kjv:eval in the background\n", k_default_model);
            return 0;
        } else if (!a.empty() && a[0] != '-') open_arg = a;
        else {
            std::fprintf(stderr, "attnlab: unknown argument '%s' (try --help)\n", a.c_str());
            return 2;
        }
    }
    std::vector<script_line> script;
    if (!script_path.empty()) {
        try {
            script = script_load(script_path);
        } catch (const std::exception & e) {
            std::fprintf(stderr, "attnlab: %s\n", e.what());
            return 2;
        }
        fs::create_directories(shot_dir);
    }

    glfwSetErrorCallback([](int code, const char * msg) { std::fprintf(stderr, "glfw error %d: %s\n", code, msg); });
    if (!glfwInit()) {
        std::fprintf(stderr, "attnlab: cannot initialise GLFW (no display? try xvfb-run)\n");
        return 1;
    }
    glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
    glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 0);
    GLFWwindow * win = glfwCreateWindow(win_w, win_h, "AttnLab", nullptr, nullptr);
    if (!win) {
        std::fprintf(stderr, "attnlab: cannot create an OpenGL 3 window\n");
        glfwTerminate();
        return 1;
    }
    glfwMakeContextCurrent(win);
    glfwSwapInterval(1);
    glfwSetDropCallback(win, on_drop);

    IMGUI_CHECKVERSION();
    ImGui::CreateContext();
    ImGuiIO & io = ImGui::GetIO();
    io.IniFilename = nullptr;  // layout is fixed; nothing to persist
    apply_style();
    const char * font = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    if (fs::exists(font)) io.Fonts->AddFontFromFileTTF(font, 15.0f);
    ImGui_ImplGlfw_InitForOpenGL(win, true);
    ImGui_ImplOpenGL3_Init("#version 130");

    // The GPU, when one is present: views ask attnlab::gpu_backend_get() (nullptr
    // without one, and the app runs exactly as a CPU-only build).
#ifdef ATTNLAB_HAVE_CUDA
    attnlab_cuda_register();
#endif
    std::string device_label;
    if (attnlab::gpu_attention_backend * gpu = attnlab::gpu_backend_get()) device_label = "GPU: " + gpu->device_name();
#ifdef ATTNLAB_HAVE_CUDA
    else device_label = "CPU only (no CUDA device)";
#else
    else device_label = "CPU only (built without CUDA)";
#endif

    int exit_code = 0;
    {
        app_state st;
        std::vector<std::unique_ptr<view>> views;
        views.push_back(make_source_view(st));
        views.push_back(make_attention_map_view(st));
        views.push_back(make_masks_view(st));
        views.push_back(make_layers_heads_view(st));
        views.push_back(make_hyperbolic_view(st));
        views.push_back(make_tradeoffs_view(st));
        views.push_back(make_kernels_view(st));
        views.push_back(make_quadratic_view(st));
        views.push_back(make_snapshots_view(st));
        size_t current = 0;
        auto select_view = [&](const std::string & id) {
            for (size_t i = 0; i < views.size(); ++i) {
                if (id == views[i]->id()) { current = i; return true; }
            }
            return false;
        };
        st.bus.subscribe(event_kind::open_view, [&](const event & e) { select_view(e.text); });
        bool autostart = script.empty() && open_arg.empty();
        st.bus.subscribe(event_kind::model_loaded, [&](const event &) {
            if (autostart && st.model) {
                autostart = false;
                st.start_capture();
            }
        });
        std::string first = open_arg.empty() ? std::string(k_default_model) : open_arg;
        if (!fs::exists(first) && open_arg.empty()) first = attnlab::data_path(k_default_model);
        if (fs::exists(first)) st.open_path(first);
        else st.load_error = first + ": not found (scripts/setup.sh downloads the default model)";

        // Script state.
        size_t pc = 0;
        double wait_until = 0, wait_limit = 0;
        bool waiting = false;
        int shot_frames = 0;
        std::string shot_file;
        auto script_fail = [&](const script_line & l, const std::string & msg) {
            std::fprintf(stderr, "script %s:%d: %s: %s\n", script_path.c_str(), l.line_no, l.cmd.c_str(), msg.c_str());
            exit_code = 1;
        };

        frame_stats stats;
        bool quit = false;
        int fb_w = 0, fb_h = 0;
        while (!glfwWindowShouldClose(win) && !quit) {
            bool busy = st.tasks.busy();
            // Idle desktop: sleep until input; a running job or a script keeps frames coming.
            if (busy || !script.empty()) glfwPollEvents();
            else glfwWaitEventsTimeout(0.25);
            auto t_frame = std::chrono::steady_clock::now();

            st.tasks.apply_finished();
            for (const auto & p : g_dropped) st.open_path(p);
            g_dropped.clear();
            st.bus.dispatch();

            ImGui_ImplOpenGL3_NewFrame();
            ImGui_ImplGlfw_NewFrame();
            ImGui::NewFrame();
            ImGui::SetNextWindowPos(ImVec2(0, 0));
            ImGui::SetNextWindowSize(io.DisplaySize);
            ImGui::Begin("AttnLab", nullptr, ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove |
                                                 ImGuiWindowFlags_NoBringToFrontOnFocus | ImGuiWindowFlags_NoScrollbar);
            const float status_h = ImGui::GetFrameHeightWithSpacing() + 4;
            // Sidebar: views and tasks.
            ImGui::BeginChild("sidebar", ImVec2(210, -status_h), true);
            ImGui::TextColored(ImVec4(0.55f, 0.8f, 1.0f, 1), "AttnLab");
            ImGui::TextDisabled("sparse attention lab");
            ImGui::Separator();
            for (size_t i = 0; i < views.size(); ++i) {
                char label[64];
                std::snprintf(label, sizeof label, "%zu  %s", i + 1, views[i]->title());
                if (ImGui::Selectable(label, current == i)) current = i;
            }
            ImGui::Separator();
            ImGui::TextUnformatted("Tasks");
            for (const auto & t : st.tasks.snapshot()) {
                ImGui::PushID(t.id);
                ImGui::TextWrapped("%s", t.name.c_str());
                char b[96];
                std::snprintf(b, sizeof b, "%.0f%% %.1fs", t.fraction * 100, t.seconds);
                ImGui::ProgressBar(float(t.fraction), ImVec2(-28, 0), b);
                ImGui::SameLine();
                if (ImGui::SmallButton("x")) st.tasks.cancel(t.id);
                if (ImGui::IsItemHovered()) ImGui::SetTooltip("cancel");
                ImGui::PopID();
            }
            int shown = 0;
            for (const auto & h : st.tasks.history()) {
                if (shown++ >= 6) break;
                ImVec4 c = h.state == task_state::failed ? ImVec4(1, 0.45f, 0.4f, 1)
                           : h.state == task_state::cancelled ? ImVec4(1, 0.8f, 0.3f, 1) : ImVec4(0.6f, 0.6f, 0.65f, 1);
                ImGui::TextColored(c, "%s %s %.2fs", task_state_name(h.state), h.name.c_str(), h.seconds);
                if (!h.error.empty() && ImGui::IsItemHovered()) ImGui::SetTooltip("%s", h.error.c_str());
            }
            ImGui::EndChild();
            ImGui::SameLine();
            ImGui::BeginChild("content", ImVec2(0, -status_h), true, ImGuiWindowFlags_NoScrollWithMouse);
            ImGui::TextColored(ImVec4(0.55f, 0.8f, 1.0f, 1), "%s", views[current]->title());
            ImGui::Separator();
            views[current]->drawContent();
            ImGui::EndChild();
            // Shortcuts: 1-9 switch views; the view gets the rest. Not while typing.
            if (!io.WantTextInput) {
                for (int k = 0; k < int(views.size()) && k < 9; ++k) {
                    if (ImGui::IsKeyPressed('1' + k) && !io.KeyCtrl) current = size_t(k);
                }
                views[current]->on_keys();
            }
            // Status bar.
            ImGui::Separator();
            std::string model = st.facts.valid() ? st.facts.name : "no model";
            std::string cap = st.cap ? std::to_string(st.cap->info.n_tokens()) + " tokens x " +
                                           std::to_string(st.cap->layers.size()) + " layers"
                                     : "no capture";
            ImGui::Text("%s  |  %s  |  layer %d head %d  |  method %s  |  %s  |  %.1f ms/frame  |  %d task(s)", model.c_str(),
                        cap.c_str(), st.layer_id(), st.head, st.method_spec.c_str(), device_label.c_str(),
                        1000.0f / std::max(1.0f, io.Framerate), int(st.tasks.snapshot().size()));
            ImGui::End();

            ImGui::Render();
            auto t_ui = std::chrono::steady_clock::now();
            glfwGetFramebufferSize(win, &fb_w, &fb_h);
            glViewport(0, 0, fb_w, fb_h);
            glClearColor(0.06f, 0.06f, 0.07f, 1);
            glClear(GL_COLOR_BUFFER_BIT);
            ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());

            // Views-as-PNG job: show each view until its tasks finish (or ~10 s), then save it.
            if (!g_shot_job && !g_shot_queue.empty()) {
                g_shot_job = std::make_unique<view_shot_job>();
                g_shot_job->req = std::move(g_shot_queue.front());
                g_shot_queue.erase(g_shot_queue.begin());
                g_shot_job->return_view = current;
                if (g_shot_job->req.ids.empty()) {
                    for (auto & v : views) g_shot_job->req.ids.push_back(v->id());
                }
                std::error_code ec;
                fs::create_directories(g_shot_job->req.dir, ec);
            }
            if (g_shot_job) {
                view_shot_job & j = *g_shot_job;
                if (j.index < j.req.ids.size()) {
                    if (j.frames == 0) {
                        if (!select_view(j.req.ids[j.index])) {
                            j.error += "no view '" + j.req.ids[j.index] + "'; ";
                            j.index++;
                            j.frames = -1;   // select the next one on the next frame
                        }
                        j.started = glfwGetTime();
                    }
                    j.frames++;
                    if (j.index < j.req.ids.size() && j.frames > 4 &&
                        (!st.tasks.busy() || glfwGetTime() - j.started > 10.0)) {
                        std::string path = (fs::path(j.req.dir) / (j.req.ids[j.index] + ".png")).string();
                        if (save_screenshot(path, fb_w, fb_h)) j.written.push_back(path);
                        else j.error += "cannot write " + path + "; ";
                        j.index++;
                        j.frames = 0;
                    }
                } else {
                    current = j.return_view;
                    auto job = std::move(g_shot_job);
                    if (job->req.done) job->req.done(job->written, job->error);
                }
            }
            // Screenshot after a few frames, so layout and textures have settled.
            if (!shot_file.empty() && --shot_frames <= 0) {
                std::string path = (fs::path(shot_dir) / shot_file).string();
                if (save_screenshot(path, fb_w, fb_h)) std::printf("screenshot: %s\n", path.c_str());
                else {
                    std::fprintf(stderr, "screenshot: cannot write %s\n", path.c_str());
                    exit_code = 1;
                }
                std::fflush(stdout);
                shot_file.clear();
            }
            auto t_render = std::chrono::steady_clock::now();
            glfwSwapBuffers(win);
            auto t_swap = std::chrono::steady_clock::now();
            using ms = std::chrono::duration<double, std::milli>;
            stats.ui_ms += ms(t_ui - t_frame).count();
            stats.render_ms += ms(t_render - t_ui).count();
            stats.swap_ms += ms(t_swap - t_render).count();
            stats.frames++;
            double work_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_frame).count();
            (busy ? stats.busy_ms : stats.idle_ms).push_back(work_ms);

            // Advance the script: at most one command per frame, blocking ones wait here.
            double now = glfwGetTime();
            while (!script.empty() && pc < script.size() && shot_file.empty() && !view_shots_running() && !quit) {
                if (waiting) {
                    if (now < wait_until) break;
                    if (wait_limit > 0) {  // "wait": until idle
                        if (st.tasks.busy()) {
                            if (now > wait_limit) {
                                script_fail(script[pc - 1], "tasks still running at the time limit");
                                st.tasks.cancel_all();
                            } else break;
                        }
                    }
                    waiting = false;
                }
                const script_line & l = script[pc++];
                const auto & a = l.args;
                std::printf("script: %s %s\n", l.cmd.c_str(), l.rest.c_str());
                std::fflush(stdout);
                try {
                    if (l.cmd == "open") st.open_path(l.rest);
                    else if (l.cmd == "text") st.text_spec = l.rest;
                    else if (l.cmd == "ctx") st.ctx = std::stoi(a.at(0));
                    else if (l.cmd == "layers") st.layers_spec = l.rest;
                    else if (l.cmd == "capture") st.start_capture();
                    else if (l.cmd == "cancel") st.cancel_capture();
                    else if (l.cmd == "wait") {
                        waiting = true;
                        wait_until = now + 0.05;
                        wait_limit = now + (a.empty() ? 600.0 : std::stod(a[0]));
                    } else if (l.cmd == "sleep") {
                        waiting = true;
                        wait_until = now + std::stod(a.at(0));
                        wait_limit = 0;
                    } else if (l.cmd == "view") {
                        if (!select_view(l.rest)) script_fail(l, "no view '" + l.rest + "'");
                    } else if (l.cmd == "layer") st.select_head(std::stoi(a.at(0)), st.head);
                    else if (l.cmd == "head") st.select_head(st.layer_index, std::stoi(a.at(0)));
                    else if (l.cmd == "method") st.set_method(l.rest);
                    else if (l.cmd == "mouse") glfwSetCursorPos(win, std::stod(a.at(0)), std::stod(a.at(1)));
                    else if (l.cmd == "screenshot") {
                        shot_file = l.rest;
                        shot_frames = 3;
                    } else if (l.cmd == "expect") {
                        if (a.size() == 2 && a[0] == "capture_tokens") {
                            int want = std::stoi(a[1]);
                            int got = st.cap ? st.cap->info.n_tokens() : 0;
                            if (got != want) script_fail(l, "capture has " + std::to_string(got) + " tokens, want " + a[1]);
                        } else if (a.size() >= 3 && a[0] == "last" && a[2] == "cancelled") {
                            bool ok = false;
                            for (const auto & h : st.tasks.history()) {
                                if (h.group == a[1]) { ok = h.state == task_state::cancelled; break; }
                            }
                            if (!ok) script_fail(l, "the last " + a[1] + " task was not cancelled");
                        } else if (a.size() == 1 && a[0] == "no_failed_tasks") {
                            for (const auto & h : st.tasks.history()) {
                                if (h.state == task_state::failed) script_fail(l, h.name + " failed: " + h.error);
                            }
                        } else script_fail(l, "unknown expectation");
                    } else if (l.cmd == "quit") quit = true;
                    else if (!views[current]->on_script(l.cmd, a)) script_fail(l, "unknown command for view " + std::string(views[current]->id()));
                } catch (const std::exception & e) {
                    script_fail(l, e.what());
                }
                st.bus.dispatch();
                break;  // one command per frame: the next frame shows its effect
            }
            if (!script.empty() && pc >= script.size() && shot_file.empty() && !waiting && !view_shots_running()) quit = true;

            // Cap at ~60 frames/s: Xvfb has no vsync, and a spinning loop would
            // steal a core from the workers on a small machine.
            double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_frame).count();
            if (spent < 1.0 / 60) std::this_thread::sleep_for(std::chrono::duration<double>(1.0 / 60 - spent));
        }
        st.tasks.cancel_all();
        stats.report();
    }
    ImGui_ImplOpenGL3_Shutdown();
    ImGui_ImplGlfw_Shutdown();
    ImGui::DestroyContext();
    glfwDestroyWindow(win);
    glfwTerminate();
    return exit_code;
}
