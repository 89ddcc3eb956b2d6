#include "cli_common.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model_files.h"

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

CLI::Option * common_opts::add_model(CLI::App * sub, const char * help) {
    return sub->add_option("--model,-m", model, help)->required();
}

CLI::Option * common_opts::add_source(CLI::App * sub) {
    return sub->add_option("--source,-s", source, "model (GGUF / HF directory) or trace file")->required();
}

CLI::Option * common_opts::add_text(CLI::App * sub, const char * help) {
    return sub->add_option("--text,-t", text, help)->capture_default_str();
}

CLI::Option * common_opts::add_ctx(CLI::App * sub, const char * help) {
    return sub->add_option("--ctx,-c", ctx, help)->capture_default_str();
}

CLI::Option * common_opts::add_method(CLI::App * sub, const char * help) {
    return sub->add_option("--method", method, help);
}

CLI::Option * common_opts::add_score(CLI::App * sub, const char * help) {
    return sub->add_option("--score", score, help)->capture_default_str();
}

CLI::Option * common_opts::add_device(CLI::App * sub, const char * help) {
    return sub->add_option("--device", device, help)->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
}

CLI::Option * common_opts::add_json(CLI::App * sub, const char * help) { return sub->add_flag("--json", json, help); }

CLI::Option * common_opts::add_quiet(CLI::App * sub) { return sub->add_flag("--quiet,-q", quiet, "no progress bar"); }

void common_opts::add_output_flags(CLI::App * sub) {
    add_json(sub);
    add_quiet(sub);
}

void command_add(std::vector<command> & cmds, CLI::App * sub, const common_opts & o, std::function<int()> run) {
    command c;
    c.sub = sub;
    c.json = &o.json;
    c.run = std::move(run);
    cmds.push_back(std::move(c));
}

void require_model_file(const std::string & path, const std::string & what) {
    if (attnlab::file_kind_detect(path) == attnlab::file_kind::trace) {
        throw attnlab::input_error(path, "model", what + " needs a model (GGUF or HF checkpoint), not a trace");
    }
}

cli_model cli_model_load(const std::string & path, bool quiet, const std::vector<int> & ctxs) {
    using namespace attnlab;
    llama_model m = run_job(quiet, [&](job_progress * job) { return llama_model_load(path, job); });
    for (int c : ctxs) llama_check_ctx(m, c, 2, path);
    bpe_tokenizer tok = tokenizer_load(path);
    tokenizer_check_model(tok, m, path);
    return cli_model{std::move(m), std::move(tok)};
}

void require_output_folder(const std::string & path) {
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, std::max<size_t>(slash, 1));
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw attnlab::input_error(path, "out", "folder " + dir + " does not exist");
    }
}

} // namespace attnlab_cli
