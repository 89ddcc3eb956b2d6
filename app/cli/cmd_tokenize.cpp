// attnlab-cli tokenize: token ids and pieces of a text under a model's tokenizer.
#include <chrono>
#include <iostream>
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "base/error.h"
#include "data/corpus.h"
#include "model/model_files.h"
#include "model/tokenizer.h"

namespace attnlab_cli {

namespace {
struct tokenize_args : common_opts {
    std::string str;
    int64_t limit = -1;
};
} // namespace

void add_cmd_tokenize(CLI::App & app, std::vector<command> & cmds) {
    auto a = std::make_shared<tokenize_args>();
    a->text = "";
    CLI::App * sub = app.add_subcommand("tokenize", "Token ids and pieces of a text");
    a->add_model(sub, "GGUF file, HF checkpoint directory or tokenizer.json");
    auto * t = a->add_text(sub, "text file, or kjv / kjv:calib / kjv:eval");
    auto * s = sub->add_option("--string,-s", a->str, "literal text to tokenize (UTF-8, as a text file must be)");
    t->excludes(s);
    sub->add_option("--limit", a->limit, "print at most this many tokens (all are counted)");
    a->add_json(sub);
    command_add(cmds, sub, *a, [a]() {
        using namespace attnlab;
        // No text given: an empty string is a valid thing to tokenize.
        attnlab::bpe_tokenizer tok = tokenizer_load(a->model);
        std::string text = a->str;
        text_check_utf8(text, "--string", "string");   // the rule a text file follows
        std::string text_sha;
        if (!a->text.empty()) {
            text_source src = text_load(a->text);
            text = src.text;
            text_sha = src.sha256;
        }
        auto t0 = std::chrono::steady_clock::now();
        std::vector<int32_t> ids = tok.encode(text);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        int64_t shown = a->limit < 0 ? int64_t(ids.size()) : std::min<int64_t>(a->limit, int64_t(ids.size()));
        if (a->json) {
            nlohmann::json j;
            j["model"] = a->model;
            j["n_tokens"] = ids.size();
            j["n_bytes"] = text.size();
            j["seconds"] = secs;
            j["tokens_per_s"] = secs > 0 ? double(ids.size()) / secs : 0.0;
            std::vector<int32_t> head(ids.begin(), ids.begin() + shown);
            j["ids"] = head;
            std::vector<std::string> pieces;
            for (int32_t id : head) pieces.push_back(tok.token_piece(id));
            // pieces may split a UTF-8 character between tokens: keep JSON valid
            j["pieces"] = nlohmann::json::parse(nlohmann::json(pieces).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
            print_json(j);
        } else {
            for (int64_t i = 0; i < shown; i++) {
                std::cout << ids[i] << "\t" << nlohmann::json(tok.token_piece(ids[i])).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
            }
            std::cout << ids.size() << " tokens, " << text.size() << " bytes, " << secs << " s\n";
        }
        return 0;
    });
}

} // namespace attnlab_cli
