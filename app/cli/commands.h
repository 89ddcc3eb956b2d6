#pragma once
// Each command file registers one subcommand and the function that runs it.
#include <functional>
#include <vector>

#include <CLI/CLI.hpp>

namespace attnlab_cli {

struct command {
    CLI::App * sub = nullptr;
    std::function<int()> run;
    const bool * json = nullptr; // set when the command prints JSON, so errors do too
};

void add_cmd_info(CLI::App & app, std::vector<command> & cmds);
void add_cmd_tokenize(CLI::App & app, std::vector<command> & cmds);
void add_cmd_ppl(CLI::App & app, std::vector<command> & cmds);
void add_cmd_capture(CLI::App & app, std::vector<command> & cmds);
void add_cmd_passkey(CLI::App & app, std::vector<command> & cmds);
void add_cmd_sim(CLI::App & app, std::vector<command> & cmds);
void add_cmd_graph(CLI::App & app, std::vector<command> & cmds);
void add_cmd_sweep(CLI::App & app, std::vector<command> & cmds);
void add_cmd_export(CLI::App & app, std::vector<command> & cmds);
void add_cmd_head(CLI::App & app, std::vector<command> & cmds);
void add_cmd_claims(CLI::App & app, std::vector<command> & cmds);
void add_cmd_snapshot(CLI::App & app, std::vector<command> & cmds);
void add_cmd_train(CLI::App & app, std::vector<command> & cmds);
void add_cmd_merge(CLI::App & app, std::vector<command> & cmds);
void add_cmd_run(CLI::App & app, std::vector<command> & cmds);

} // namespace attnlab_cli
