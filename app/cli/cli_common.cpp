#include "cli_common.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>
#include <unistd.h>

namespace attnlab_cli {

static std::atomic<attnlab::job_progress *> g_active{nullptr};

static void on_sigint(int) {
    attnlab::job_progress * p = g_active.load();
    if (p) p->cancel();
    else std::_Exit(130);
}

struct progress_bar::impl {
    attnlab::job_progress & job;
    bool quiet;
    std::atomic<bool> stop{false};
    std::thread drawer;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    bool tty = isatty(STDERR_FILENO);
    int last_decile = -1;

    impl(attnlab::job_progress & j, bool q) : job(j), quiet(q) {}

    void draw(bool final) {
        double f = job.fraction();
        double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        double eta = f > 0.01 ? el * (1.0 - f) / f : 0.0;
        if (tty) {
            int w = 30, fill = int(f * w + 0.5);
            std::string bar(fill, '#');
            bar += std::string(w - fill, '-');
            std::fprintf(stderr, "\r[%s] %5.1f%%  %6.1fs  eta %6.1fs  %-28s", bar.c_str(), 100 * f, el, eta,
                         job.stage().substr(0, 28).c_str());
            if (final) std::fprintf(stderr, "\n");
        } else {
            int d = int(f * 10);
            if (d != last_decile || final) {
                last_decile = d;
                std::fprintf(stderr, "progress %5.1f%%  %.1fs  eta %.1fs  %s\n", 100 * f, el, eta, job.stage().c_str());
            }
        }
        std::fflush(stderr);
    }
};

progress_bar::progress_bar(attnlab::job_progress & job, bool quiet) : p_(new impl(job, quiet)) {
    g_active.store(&job);
    std::signal(SIGINT, on_sigint);
    if (!quiet) {
        p_->drawer = std::thread([this] {
            while (!p_->stop.load()) {
                p_->draw(false);
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
            }
        });
    }
}

void progress_bar::finish() {
    if (p_->stop.exchange(true)) return;
    if (p_->drawer.joinable()) p_->drawer.join();
    if (!p_->quiet) p_->draw(true);
}

progress_bar::~progress_bar() {
    p_->stop.store(true);
    if (p_->drawer.joinable()) p_->drawer.join();
    g_active.store(nullptr);
    std::signal(SIGINT, SIG_DFL);
    delete p_;
}

void print_json(const nlohmann::json & j) { std::cout << j.dump(2) << std::endl; }

} // namespace attnlab_cli
