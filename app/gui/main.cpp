// attnlab: the desktop app. GLFW window + Dear ImGui; a sidebar of views, a
// task list and a status bar. All engine work runs in task_manager workers;
// the frame loop applies finished results once per frame. The views come
// from one table (view_registry.h), scripted runs from script.h, PNGs of the
// window from screenshot.h.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <GLFW/glfw3.h>
#include <imgui.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>

#include "app_state.h"
#include "attention/gpu_backend.h"
#include "base/data_path.h"
#include "screenshot.h"
#include "script.h"
#include "view_registry.h"
#ifdef ATTNLAB_HAVE_CUDA
#include "cuda_register.h"   // kernels/: attnlab_cuda_register()
#endif

using namespace attnlab_gui;
namespace fs = std::filesystem;

namespace {

const char * k_default_model = "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf";

std::vector<std::string> g_dropped;  // from the GLFW drop callback, consumed by the frame loop

void on_drop(GLFWwindow *, int n, const char ** paths) {
    for (int i = 0; i < n; ++i) g_dropped.emplace_back(paths[i]);
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

struct app_args {
    std::string script_path, shot_dir = ".", open_arg;
    int win_w = 1600, win_h = 1000;
};

// -1: go on; otherwise the exit code (--help, a bad argument).
int parse_args(int argc, char ** argv, app_args & a) {
    for (int i = 1; i < argc; ++i) {
        std::string s = argv[i];
        if (s == "--script" && i + 1 < argc) a.script_path = argv[++i];
        else if (s == "--screenshot-dir" && i + 1 < argc) a.shot_dir = argv[++i];
        else if (s == "--size" && i + 2 < argc) {
            a.win_w = std::atoi(argv[++i]);
            a.win_h = std::atoi(argv[++i]);
        } else if (s == "--help" || s == "-h") {
            std::printf("usage: attnlab [MODEL_OR_TRACE] [--script FILE --screenshot-dir DIR] [--size W H]\n"
                        "  no arguments: opens %s and captures kjv:eval in the background\n", k_default_model);
            return 0;
        } else if (!s.empty() && s[0] != '-') a.open_arg = s;
        else {
            std::fprintf(stderr, "attnlab: unknown argument '%s' (try --help)\n", s.c_str());
            return 2;
        }
    }
    return -1;
}

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

// GLFW window with an OpenGL 3 context and Dear ImGui on it; null (said on stderr) when there is none.
GLFWwindow * window_open(int w, int h) {
    glfwSetErrorCallback([](int code, const char * msg) { std::fprintf(stderr, "glfw error %d: %s\n", code, msg); });
    if (!glfwInit()) {
        std::fprintf(stderr, "attnlab: cannot initialise GLFW (no display? try xvfb-run)\n");
        return nullptr;
    }
    glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
    glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 0);
    GLFWwindow * win = glfwCreateWindow(w, h, "AttnLab", nullptr, nullptr);
    if (!win) {
        std::fprintf(stderr, "attnlab: cannot create an OpenGL 3 window\n");
        glfwTerminate();
        return nullptr;
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
    return win;
}

void window_close(GLFWwindow * win) {
    ImGui_ImplOpenGL3_Shutdown();
    ImGui_ImplGlfw_Shutdown();
    ImGui::DestroyContext();
    glfwDestroyWindow(win);
    glfwTerminate();
}

// The GPU, when one is present: views ask attnlab::gpu_backend_get() (nullptr
// without one, and the app runs exactly as a CPU-only build).
std::string device_setup() {
#ifdef ATTNLAB_HAVE_CUDA
    attnlab_cuda_register();
#endif
    if (attnlab::gpu_attention_backend * gpu = attnlab::gpu_backend_get()) return "GPU: " + gpu->device_name();
#ifdef ATTNLAB_HAVE_CUDA
    return "CPU only (no CUDA device)";
#else
    return "CPU only (built without CUDA)";
#endif
}

void draw_sidebar(app_state & st, view_set & views) {
    ImGui::TextColored(ImVec4(0.55f, 0.8f, 1.0f, 1), "AttnLab");
    ImGui::TextDisabled("sparse attention lab");
    ImGui::Separator();
    for (size_t i = 0; i < views.size(); ++i) {
        char label[64];
        std::snprintf(label, sizeof label, "%zu  %s", i + 1, views.entry(i).title);
        if (ImGui::Selectable(label, views.current() == i)) views.show(i);
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
}

void draw_status_bar(const app_state & st, const std::string & device) {
    std::string model = st.facts.valid() ? st.facts.name : "no model";
    std::string cap = st.cap ? std::to_string(st.cap->info.n_tokens()) + " tokens x " +
                                   std::to_string(st.cap->layers.size()) + " layers (" + st.capture_device +
                                   (st.gpu_cap ? ", Q/K kept on the GPU)" : ")")
                             : "no capture";
    std::string dev = device + (st.map_status.empty() ? "" : "  |  " + st.map_status);
    ImGui::Text("%s  |  %s  |  layer %d head %d  |  method %s  |  %s  |  %.1f ms/frame  |  %d task(s)", model.c_str(),
                cap.c_str(), st.layer_id(), st.head, st.method_spec.c_str(), dev.c_str(),
                1000.0f / std::max(1.0f, ImGui::GetIO().Framerate), int(st.tasks.snapshot().size()));
}

// One frame's UI: the sidebar, the shown view, the status bar; keys 1-9 switch views.
void draw_frame(app_state & st, view_set & views, const std::string & device) {
    ImGuiIO & io = ImGui::GetIO();
    ImGui::SetNextWindowPos(ImVec2(0, 0));
    ImGui::SetNextWindowSize(io.DisplaySize);
    ImGui::Begin("AttnLab", nullptr, ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove |
                                         ImGuiWindowFlags_NoBringToFrontOnFocus | ImGuiWindowFlags_NoScrollbar);
    const float status_h = ImGui::GetFrameHeightWithSpacing() + 4;
    ImGui::BeginChild("sidebar", ImVec2(210, -status_h), true);
    draw_sidebar(st, views);
    ImGui::EndChild();
    ImGui::SameLine();
    ImGui::BeginChild("content", ImVec2(0, -status_h), true, ImGuiWindowFlags_NoScrollWithMouse);
    ImGui::TextColored(ImVec4(0.55f, 0.8f, 1.0f, 1), "%s", views.shown_title());
    ImGui::Separator();
    views.shown().drawContent();
    ImGui::EndChild();
    // Shortcuts: 1-9 switch views; the view gets the rest. Not while typing.
    if (!io.WantTextInput) {
        for (int k = 0; k < int(views.size()) && k < 9; ++k) {
            if (ImGui::IsKeyPressed('1' + k) && !io.KeyCtrl) views.show(size_t(k));
        }
        views.shown().on_keys();
    }
    ImGui::Separator();
    draw_status_bar(st, device);
    ImGui::End();
}

// The model or trace named on the command line, else the default model
// (captured at once when no script drives the app).
void open_first(app_state & st, const app_args & a, bool * autostart) {
    *autostart = a.script_path.empty() && a.open_arg.empty();
    st.bus.subscribe(event_kind::model_loaded, [&st, autostart](const event &) {
        if (*autostart && st.model) {
            *autostart = false;
            st.start_capture();
        }
    });
    std::string first = a.open_arg.empty() ? std::string(k_default_model) : a.open_arg;
    if (!fs::exists(first) && a.open_arg.empty()) first = attnlab::data_path(k_default_model);
    if (fs::exists(first)) st.open_path(first);
    else st.load_error = first + ": not found (scripts/setup.sh downloads the default model)";
}

int run_app(GLFWwindow * win, const app_args & args, script_runner & script, const std::string & device) {
    bool autostart = false;   // outlives st, whose bus holds a handler reading it
    app_state st;
    view_set views(st);
    st.bus.subscribe(event_kind::open_view, [&](const event & e) { views.select(e.text); });
    open_first(st, args, &autostart);
    screenshot_taker shots;
    script_context cx{st, views, shots, args.shot_dir, [win](double x, double y) { glfwSetCursorPos(win, x, y); }};
    int exit_code = 0;
    frame_stats stats;
    using clock = std::chrono::steady_clock;
    using ms = std::chrono::duration<double, std::milli>;
    while (!glfwWindowShouldClose(win) && !script.finished(cx)) {
        bool busy = st.tasks.busy();
        // Idle desktop: sleep until input; a running job or a script keeps frames coming.
        if (busy || script.active()) glfwPollEvents();
        else glfwWaitEventsTimeout(0.25);
        auto t_frame = clock::now();
        st.tasks.apply_finished();
        for (const auto & p : g_dropped) st.open_path(p);
        g_dropped.clear();
        st.bus.dispatch();

        ImGui_ImplOpenGL3_NewFrame();
        ImGui_ImplGlfw_NewFrame();
        ImGui::NewFrame();
        draw_frame(st, views, device);
        ImGui::Render();
        auto t_ui = clock::now();
        int fb_w = 0, fb_h = 0;
        glfwGetFramebufferSize(win, &fb_w, &fb_h);
        glViewport(0, 0, fb_w, fb_h);
        glClearColor(0.06f, 0.06f, 0.07f, 1);
        glClear(GL_COLOR_BUFFER_BIT);
        ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
        if (!shots.after_render(fb_w, fb_h, glfwGetTime(), views, st)) exit_code = 1;
        auto t_render = clock::now();
        glfwSwapBuffers(win);
        auto t_swap = clock::now();
        stats.ui_ms += ms(t_ui - t_frame).count();
        stats.render_ms += ms(t_render - t_ui).count();
        stats.swap_ms += ms(t_swap - t_render).count();
        stats.frames++;
        (busy ? stats.busy_ms : stats.idle_ms).push_back(ms(clock::now() - t_frame).count());

        script.step(glfwGetTime(), cx);
        // Cap at ~60 frames/s: Xvfb has no vsync, and a spinning loop would
        // steal a core from the workers on a small machine.
        double spent = std::chrono::duration<double>(clock::now() - t_frame).count();
        if (spent < 1.0 / 60) std::this_thread::sleep_for(std::chrono::duration<double>(1.0 / 60 - spent));
    }
    st.tasks.cancel_all();
    stats.report();
    return std::max(exit_code, script.exit_code());
}

} // namespace

int main(int argc, char ** argv) {
    app_args args;
    if (int rc = parse_args(argc, argv, args); rc >= 0) return rc;
    const std::string bad_table = view_registry_check();
    if (!bad_table.empty()) {
        std::fprintf(stderr, "attnlab: %s\n", bad_table.c_str());
        return 1;
    }
    std::vector<script_line> lines;
    if (!args.script_path.empty()) {
        try {
            lines = script_load(args.script_path);
        } catch (const std::exception & e) {
            std::fprintf(stderr, "attnlab: %s\n", e.what());
            return 2;
        }
        fs::create_directories(args.shot_dir);
    }
    script_runner script(args.script_path, std::move(lines));
    GLFWwindow * win = window_open(args.win_w, args.win_h);
    if (!win) return 1;
    const std::string device = device_setup();
    const int exit_code = run_app(win, args, script, device);
    window_close(win);
    return exit_code;
}
