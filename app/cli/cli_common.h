#pragma once
// Shared pieces of attnlab-cli: the options most commands take (one name, help
// text and default each), the progress/cancel wrapper every job runs in, the
// model + tokenizer load, and JSON printing. A command file declares only what
// is its own.
#include <functional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "base/error.h"
#include "base/job.h"
#include "model/llama.h"
#include "model/tokenizer.h"

namespace attnlab_cli {

// Draws a progress bar on stderr while a job runs (a line per 10% when stderr
// is not a terminal) and turns Ctrl-C into a cancel request.
class progress_bar {
public:
    explicit progress_bar(attnlab::job_progress & p, bool quiet = false);
    ~progress_bar();
    void finish();

private:
    struct impl;
    impl * p_;
};

// Runs f(job_progress *) under a progress bar (none when quiet; Ctrl-C
// cancels) and returns what f returns. The one wrapper for every job.
template <class F>
auto run_job(bool quiet, F && f) -> decltype(f(static_cast<attnlab::job_progress *>(nullptr))) {
    attnlab::job_progress job;
    progress_bar bar(job, quiet);
    if constexpr (std::is_void_v<decltype(f(&job))>) {
        f(&job);
        bar.finish();
    } else {
        auto r = f(&job);
        bar.finish();
        return r;
    }
}

// The options many commands share. A command's arguments derive from it and
// register the ones they take; defaults other than these are set before the
// add_* call (it captures the default for --help).
struct common_opts {
    std::string model, source, text = "kjv:eval", method, score = "softmax", device = "cpu";
    int ctx = 1024;
    bool json = false, quiet = false;

    CLI::Option * add_model(CLI::App * sub, const char * help = "GGUF file or HF checkpoint directory");
    CLI::Option * add_source(CLI::App * sub);   // --source,-s: a model or a trace
    CLI::Option * add_text(CLI::App * sub, const char * help);
    CLI::Option * add_ctx(CLI::App * sub, const char * help);
    CLI::Option * add_method(CLI::App * sub, const char * help);
    CLI::Option * add_score(CLI::App * sub, const char * help);
    CLI::Option * add_device(CLI::App * sub, const char * help);
    CLI::Option * add_json(CLI::App * sub, const char * help = "JSON output");
    CLI::Option * add_quiet(CLI::App * sub);
    void add_output_flags(CLI::App * sub);      // --json, then --quiet (last in --help)
};

// Adds the command: run() is called when sub was parsed; with --json, errors
// print as JSON too.
void command_add(std::vector<command> & cmds, CLI::App * sub, const common_opts & o, std::function<int()> run);

// input_error unless path is a model (GGUF or HF checkpoint): "WHAT needs a
// model (GGUF or HF checkpoint), not a trace".
void require_model_file(const std::string & path, const std::string & what);

// A model and its tokenizer, checked against each other and each ctx against
// the model's context (before the tokenizer load, so a bad --ctx is named first).
struct cli_model {
    attnlab::llama_model m;
    attnlab::bpe_tokenizer tok;
};
cli_model cli_model_load(const std::string & path, bool quiet, const std::vector<int> & ctxs = {});

void print_json(const nlohmann::json & j);

// "2048,4096" -> {2048, 4096}; input_error naming the option on a bad item
// (or on an empty list unless allow_empty).
template <typename T>
std::vector<T> parse_number_list(const std::string & s, const char * option, bool allow_empty = false) {
    std::vector<T> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        std::stringstream is(item);
        T v;
        if (!(is >> v) || !is.eof()) {
            throw attnlab::input_error("--" + std::string(option), option, "cannot parse '" + item + "'");
        }
        out.push_back(v);
    }
    if (out.empty() && !allow_empty) throw attnlab::input_error("--" + std::string(option), option, "empty list");
    return out;
}

// input_error (FILE: out: "folder DIR does not exist") when path's folder is
// missing: checked before minutes of work, not after.
void require_output_folder(const std::string & path);

} // namespace attnlab_cli
