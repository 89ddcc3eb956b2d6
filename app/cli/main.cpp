// attnlab-cli: the engine from the command line. Every command has --help and
// --json (stable keys); bad input prints one "error: FILE: FIELD: message"
// line and exits 2; Ctrl-C cancels a running job and exits 130.
#include <iostream>
#include <new>
#include <string>

#include "cli_common.h"
#include "commands.h"
#include "base/error.h"
#include "base/version.h"
#ifdef ATTNLAB_HAVE_CUDA
#include "cuda_register.h"   // kernels/: fills core's GPU slots
#endif

namespace {

// Every refusal, whatever threw it: one line "error: FILE: FIELD: message"
// (input_error's text) or "error: message", exit code 2.
int refuse(bool json, const std::string & file, const std::string & field, std::string msg) {
    for (char & ch : msg) {
        if (ch == '\n' || ch == '\r') ch = ' ';
    }
    if (json) attnlab_cli::print_json({{"error", {{"file", file}, {"field", field}, {"message", msg}}}});
    std::cerr << "error: " << msg << std::endl;
    return 2;
}

} // namespace

int main(int argc, char ** argv) {
    using namespace attnlab_cli;
#ifdef ATTNLAB_HAVE_CUDA
    attnlab_cuda_register();
#endif
    CLI::App app{"attnlab-cli: measure dense and sparse attention on real models"};
    app.set_version_flag("--version", std::string(attnlab::version_string()) + " (" + attnlab::version_git_commit() + ")");
    app.require_subcommand(1);
    std::vector<command> cmds;
    add_cmd_info(app, cmds);
    add_cmd_tokenize(app, cmds);
    add_cmd_ppl(app, cmds);
    add_cmd_capture(app, cmds);
    add_cmd_passkey(app, cmds);
    add_cmd_sim(app, cmds);
    add_cmd_graph(app, cmds);
    add_cmd_sweep(app, cmds);
    add_cmd_export(app, cmds);
    add_cmd_head(app, cmds);
    add_cmd_claims(app, cmds);
    add_cmd_snapshot(app, cmds);
    add_cmd_train(app, cmds);
    add_cmd_merge(app, cmds);
    add_cmd_run(app, cmds);
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success & e) {
        return app.exit(e);                       // --help, --version
    } catch (const CLI::ParseError & e) {
        // CLI11 prints two lines and exits 100+; the contract is one line, exit 2.
        return refuse(false, "", "", e.what());
    }
    for (const command & c : cmds) {
        if (!c.sub->parsed()) continue;
        bool json = c.json && *c.json;
        try {
            return c.run();
        } catch (const attnlab::input_error & e) {
            return refuse(json, e.file(), e.field(), e.what());
        } catch (const attnlab::job_cancelled &) {
            if (json) print_json({{"error", {{"message", "cancelled"}}}});
            std::cerr << "cancelled" << std::endl;
            return 130;
        } catch (const std::bad_alloc &) {
            return refuse(json, "", "", "out of memory");
        } catch (const std::exception & e) {
            return refuse(json, "", "", e.what());
        }
    }
    return 2;
}
