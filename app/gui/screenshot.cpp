#include "screenshot.h"

#include <cstdio>
#include <filesystem>
#include <vector>

#include <GLFW/glfw3.h>

#include <imgui.h>

#include "base/png_write.h"
#include "chart_export.h"

namespace attnlab_gui {

namespace fs = std::filesystem;

namespace {

// Views-as-PNG jobs (request_view_shots), run one at a time.
struct view_shot_job {
    view_shot_request req;
    size_t index = 0, return_view = 0;
    int frames = 0;
    double started = 0;
    std::vector<std::string> written;
    std::string error;
};
std::vector<view_shot_request> g_queue;
std::unique_ptr<view_shot_job> g_job;

void view_shot_start(view_set & views) {
    g_job = std::make_unique<view_shot_job>();
    g_job->req = std::move(g_queue.front());
    g_queue.erase(g_queue.begin());
    g_job->return_view = views.current();
    if (g_job->req.ids.empty()) {
        for (size_t i = 0; i < views.size(); ++i) g_job->req.ids.push_back(views.entry(i).id);
    }
    std::error_code ec;
    fs::create_directories(g_job->req.dir, ec);
}

void view_shot_step(int fb_w, int fb_h, double now, view_set & views, const app_state & st) {
    view_shot_job & j = *g_job;
    if (j.index >= j.req.ids.size()) {
        views.show(j.return_view);
        auto job = std::move(g_job);
        if (job->req.done) job->req.done(job->written, job->error);
        return;
    }
    if (j.frames == 0) {
        if (!views.select(j.req.ids[j.index])) {
            j.error += "no view '" + j.req.ids[j.index] + "'; ";
            j.index++;
            j.frames = -1;   // select the next one on the next frame
        }
        j.started = now;
    }
    j.frames++;
    if (j.index < j.req.ids.size() && j.frames > 4 && (!st.tasks.busy() || now - j.started > 10.0)) {
        std::string path = (fs::path(j.req.dir) / (j.req.ids[j.index] + ".png")).string();
        if (screenshot_save(path, fb_w, fb_h)) j.written.push_back(path);
        else j.error += "cannot write " + path + "; ";
        j.index++;
        j.frames = 0;
    }
}

} // namespace

void request_view_shots(view_shot_request r) { g_queue.push_back(std::move(r)); }
bool view_shots_running() { return g_job != nullptr || !g_queue.empty(); }

bool screenshot_save(const std::string & path, int w, int h) {
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

void screenshot_taker::request(const std::string & path, int frames) {
    path_ = path;
    frames_ = frames;
}

bool screenshot_taker::after_render(int fb_w, int fb_h, double now, view_set & views, const app_state & st) {
    const float disp_w = ImGui::GetIO().DisplaySize.x;
    chart_export_after_render(fb_w, fb_h, disp_w > 0 ? float(fb_w) / disp_w : 1.0f);
    if (!g_job && !g_queue.empty()) view_shot_start(views);
    if (g_job) view_shot_step(fb_w, fb_h, now, views, st);
    bool ok = true;
    if (!path_.empty() && --frames_ <= 0) {
        if (screenshot_save(path_, fb_w, fb_h)) std::printf("screenshot: %s\n", path_.c_str());
        else {
            std::fprintf(stderr, "screenshot: cannot write %s\n", path_.c_str());
            ok = false;
        }
        std::fflush(stdout);
        path_.clear();
    }
    return ok;
}

} // namespace attnlab_gui
