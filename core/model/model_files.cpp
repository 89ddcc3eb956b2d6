#include "model/model_files.h"
#include "base/error.h"
#include "base/read_file.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "io/trace.h"
#include "model/llama.h"
#include "model/tokenizer.h"

#include <fstream>
#include <sys/stat.h>

namespace attnlab {

const char * file_kind_name(file_kind k) {
    switch (k) {
        case file_kind::gguf: return "gguf";
        case file_kind::hf_checkpoint: return "hf_checkpoint";
        case file_kind::trace: return "trace";
        case file_kind::safetensors: return "safetensors";
        case file_kind::tokenizer_json: return "tokenizer_json";
        case file_kind::unknown: return "unknown";
    }
    return "unknown";
}

static bool is_dir(const std::string & p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

file_kind file_kind_detect(const std::string & path) {
    if (is_dir(path)) return hf_checkpoint_is_dir(path) ? file_kind::hf_checkpoint : file_kind::unknown;
    std::string h;
    if (!read_head(path, 16, &h)) return file_kind::unknown; // a FIFO or device throws: never blocks
    const char * head = h.data();
    const std::streamsize got = (std::streamsize)h.size();
    if (got >= 4 && std::string(head, 4) == "GGUF") return file_kind::gguf;
    if (got >= 9 && head[8] == '{') return trace_is_trace(path) ? file_kind::trace : file_kind::safetensors;
    // tokenizer.json: a JSON object; skip leading whitespace
    for (std::streamsize i = 0; i < got; i++) {
        if (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t') continue;
        return head[i] == '{' ? file_kind::tokenizer_json : file_kind::unknown;
    }
    return file_kind::unknown;
}

bpe_tokenizer tokenizer_load(const std::string & path) {
    switch (file_kind_detect(path)) {
        case file_kind::gguf: return bpe_tokenizer::from_gguf(gguf_file::open(path));
        case file_kind::hf_checkpoint: return bpe_tokenizer::from_tokenizer_json(path + "/tokenizer.json");
        case file_kind::tokenizer_json: return bpe_tokenizer::from_tokenizer_json(path);
        case file_kind::trace:
            throw input_error(path, "tokenizer", "a trace carries token strings but no tokenizer; give the model");
        default: break;
    }
    file_kind_refuse(path, "a GGUF file, a Hugging Face checkpoint directory or a tokenizer.json");
}

void file_kind_refuse(const std::string & path, const std::string & expected) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw input_error(path, "file", "no such file or directory");
    if (S_ISDIR(st.st_mode))
        throw input_error(path, "file", "a directory without config.json and *.safetensors: not " + expected);
    throw input_error(path, "file", "not " + expected);
}

void tokenizer_check_model(const bpe_tokenizer & tok, const llama_model & m, const std::string & tok_source) {
    if (tok.n_vocab() > m.cfg.n_vocab) {
        throw input_error(tok_source, "tokenizer vocab",
                          std::to_string(tok.n_vocab()) + " tokens, but the model " + m.source_path + " embeds only " +
                              std::to_string(m.cfg.n_vocab) + ": mismatched tokenizer");
    }
}

} // namespace attnlab
