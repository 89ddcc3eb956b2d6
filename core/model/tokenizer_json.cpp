// Loading a Hugging Face tokenizer.json: byte-level BPE with one of the
// supported pre-tokenizers, or SentencePiece-style BPE with byte fallback.
#include "model/tokenizer.h"
#include "model/tokenizer_impl.h"

#include "base/error.h"
#include "base/json_read.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sys/stat.h>

namespace attnlab {

namespace {

using json = nlohmann::json;

// Unused ids a tokenizer.json may leave below its largest id (real files leave
// none; each costs a slot).
const int64_t k_max_id_gap = 1 << 16;

// The pre-tokenizer of a tokenizer.json, reduced to the cases we split by hand.
pre_kind pre_from_json(const std::string & file, const json & pt, std::string & name) {
    const std::string field = "pre_tokenizer";
    auto type_of = [](const json & j) -> std::string {
        return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
    };
    auto check_byte_level = [&](const json & bl, bool want_regex, const std::string & f) {
        if (bl.value("add_prefix_space", false)) {
            throw input_error(file, f + ".add_prefix_space", "add_prefix_space=true is not supported");
        }
        if (bl.value("use_regex", true) != want_regex) {
            throw input_error(file, f + ".use_regex",
                              want_regex ? "ByteLevel without its regex is only supported after a Split"
                                         : "ByteLevel after a Split must have use_regex=false");
        }
    };
    auto split_kind = [&](const json & sp, const std::string & f) -> pre_kind {
        std::string pat;
        if (sp.contains("pattern") && sp["pattern"].is_object() && sp["pattern"].contains("Regex") &&
            sp["pattern"]["Regex"].is_string()) {
            pat = sp["pattern"]["Regex"].get<std::string>();
        }
        if (sp.value("behavior", std::string()) != "Isolated" || sp.value("invert", false)) {
            throw input_error(file, f + ".behavior", "only Split with behavior Isolated (invert=false) is supported");
        }
        if (pat == gpt2_pattern) { name = "gpt2"; return pre_kind::gpt2; }
        if (pat == llama3_pattern) { name = "llama-bpe"; return pre_kind::llama3; }
        if (pat == qwen2_pattern) { name = "qwen2"; return pre_kind::qwen2; }
        throw input_error(file, f + ".pattern", "unsupported split regex (supported: the GPT-2, llama3 and qwen2 patterns)");
    };

    const std::string type = type_of(pt);
    if (type == "ByteLevel") {
        check_byte_level(pt, true, field);
        name = "gpt2";
        return pre_kind::gpt2;
    }
    if (type == "Sequence" && pt.contains("pretokenizers") && pt["pretokenizers"].is_array() &&
        pt["pretokenizers"].size() == 2) {
        const json & p0 = pt["pretokenizers"][0];
        const json & p1 = pt["pretokenizers"][1];
        const std::string f0 = field + ".pretokenizers[0]", f1 = field + ".pretokenizers[1]";
        if (type_of(p0) == "Digits" && type_of(p1) == "ByteLevel") {
            if (!p0.value("individual_digits", false)) {
                throw input_error(file, f0 + ".individual_digits", "only individual_digits=true is supported");
            }
            check_byte_level(p1, true, f1);
            name = "smollm";
            return pre_kind::smollm;
        }
        if (type_of(p0) == "Split" && type_of(p1) == "ByteLevel") {
            const pre_kind k = split_kind(p0, f0);
            check_byte_level(p1, false, f1);
            return k;
        }
    }
    throw input_error(file, field, "unsupported pre-tokenizer '" + pt.dump().substr(0, 200) +
                                       "' (supported: ByteLevel; Sequence of Digits(individual) + ByteLevel; "
                                       "Sequence of Split(GPT-2/llama3/qwen2 regex) + ByteLevel)");
}

// The SentencePiece-style shapes of a tokenizer.json: normalizer
// Sequence[Prepend "▁", Replace " " -> "▁"] (Llama 2, Mistral v0.1) or
// Replace alone (Gemma) with no pre-tokenizer, or no normalizer and a
// Metaspace pre-tokenizer without splitting (Mistral v0.3). Returns false
// for a byte-level tokenizer (no normalizer, some pre-tokenizer).
bool spm_from_json(const std::string & file, const json & doc, spm_prefix & prefix, bool & if_missing) {
    const json none;
    const json & norm = doc.contains("normalizer") ? doc["normalizer"] : none;
    const json & pre = doc.contains("pre_tokenizer") ? doc["pre_tokenizer"] : none;
    auto is_replace = [](const json & j) {
        return j.is_object() && j.value("type", "") == "Replace" && j.contains("pattern") && j["pattern"].is_object() &&
               j["pattern"].value("String", "") == " " && j.value("content", "") == k_spm_space;
    };
    if (norm.is_null()) {
        if (!pre.is_object() || pre.value("type", "") != "Metaspace") return false;
        if (pre.value("replacement", "") != k_spm_space || pre.value("split", true))
            throw input_error(file, "pre_tokenizer", "only Metaspace with replacement \u2581 and split=false is supported");
        const std::string scheme = pre.value("prepend_scheme", "always");
        prefix = scheme == "first" ? spm_prefix::first_segment : scheme == "never" ? spm_prefix::none : spm_prefix::every_segment;
        if_missing = true;
        return true;
    }
    if (!pre.is_null()) throw input_error(file, "normalizer", "a normalizer with a pre-tokenizer is not supported");
    if (is_replace(norm)) {
        prefix = spm_prefix::none;
        return true;
    }
    const json & seq = norm.is_object() && norm.value("type", "") == "Sequence" && norm.contains("normalizers")
                           ? norm["normalizers"] : none;
    if (seq.is_array() && seq.size() == 2 && seq[0].is_object() && seq[0].value("type", "") == "Prepend" &&
        seq[0].value("prepend", "") == k_spm_space && is_replace(seq[1])) {
        prefix = spm_prefix::every_segment;
        return true;
    }
    throw input_error(file, "normalizer", "unsupported normalizer '" + norm.dump().substr(0, 200) +
                                              "' (supported: none; SentencePiece's Prepend + Replace, or Replace)");
}

// "<s>" or {"content": "<s>", ...}, as tokenizer_config.json writes special tokens.
std::string config_token(const json & j) {
    if (j.is_string()) return j.get<std::string>();
    if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
    return {};
}

} // namespace

bpe_tokenizer bpe_tokenizer::from_tokenizer_json(const std::string & path) {
    bpe_tokenizer tok;
    impl & m = *tok.p_;
    m.source = path;

    const json doc = json_read_file(path, "json");
    if (!doc.is_object()) throw input_error(path, "json", "top level is not an object");

    try {
        if (!doc.contains("model") || !doc["model"].is_object()) throw input_error(path, "model", "missing or not an object");
        const json & model = doc["model"];
        // HF writes "type"; very old files leave it out for BPE.
        const std::string mtype = model.contains("type") && model["type"].is_string() ? model["type"].get<std::string>()
                                  : model.contains("merges") ? "BPE" : "";
        if (mtype != "BPE") {
            throw input_error(path, "model.type", "unsupported tokenizer model '" + mtype +
                                                      "'; only byte-level BPE is supported (Unigram, WordPiece and "
                                                      "WordLevel are out of scope)");
        }
        m.spm = spm_from_json(path, doc, m.prepend, m.prefix_if_missing);
        // The decoder's Strip(" ", start) (Llama 2, Mistral) removes the prefix space.
        const json & dec = doc.contains("decoder") && doc["decoder"].is_object() ? doc["decoder"] : json();
        const json steps = dec.contains("decoders") && dec["decoders"].is_array() ? dec["decoders"] : json::array({dec});
        for (const json & d : steps)
            if (m.spm && d.is_object() && d.value("type", "") == "Strip" && d.value("content", "") == " ")
                m.strip_lead = std::clamp(d.value("start", 0), 0, 8);
        if (model.value("byte_fallback", false) && !m.spm)
            throw input_error(path, "model.byte_fallback", "byte_fallback=true is only supported for SentencePiece-style BPE");
        m.fuse_unk = model.value("fuse_unk", false);
        for (const char * k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
            if (model.contains(k) && !model[k].is_null() && !(model[k].is_string() && model[k].get<std::string>().empty())) {
                throw input_error(path, std::string("model.") + k, "not supported by byte-level BPE");
            }
        }
        if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].is_number() &&
            model["dropout"].get<double>() > 0.0) {
            throw input_error(path, "model.dropout", "BPE dropout is not supported (encoding must be deterministic)");
        }
        m.ignore_merges = model.value("ignore_merges", false);

        if (m.spm) {
            m.pre_name = "spm";
        } else {
            if (!doc.contains("pre_tokenizer") || doc["pre_tokenizer"].is_null()) {
                throw input_error(path, "pre_tokenizer", "missing: a byte-level BPE needs its ByteLevel pre-tokenizer");
            }
            m.pre = pre_from_json(path, doc["pre_tokenizer"], m.pre_name);
        }

        // Vocabulary: ids may leave gaps (filled by added tokens or left empty).
        if (!model.contains("vocab") || !model["vocab"].is_object()) throw input_error(path, "model.vocab", "missing or not an object");
        int64_t max_id = -1;
        for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
            if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > (1 << 24)) {
                throw input_error(path, "model.vocab[\"" + it.key() + "\"]", "id must be an integer in [0, 2^24]");
            }
            max_id = std::max(max_id, it.value().get<int64_t>());
        }
        const json added = doc.contains("added_tokens") && doc["added_tokens"].is_array() ? doc["added_tokens"] : json::array();
        for (size_t i = 0; i < added.size(); ++i) {
            const json & a = added[i];
            const std::string f = "added_tokens[" + std::to_string(i) + "]";
            if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
                !a["content"].is_string() || a["id"].get<int64_t>() < 0 || a["id"].get<int64_t>() > (1 << 24)) {
                throw input_error(path, f, "expected {\"id\": int, \"content\": string, ...}");
            }
            if (a.value("lstrip", false) || a.value("rstrip", false) || a.value("single_word", false)) {
                throw input_error(path, f, "lstrip/rstrip/single_word added tokens are not supported");
            }
            max_id = std::max(max_id, a["id"].get<int64_t>());
        }
        if (max_id < 0) throw input_error(path, "model.vocab", "empty vocabulary");
        // Every id up to the largest gets a slot: bound the gaps so a small
        // file cannot ask for 2^24 slots (1.5 GB for one id in a 39 KB file).
        const int64_t n_listed = int64_t(model["vocab"].size() + added.size());
        if (max_id >= n_listed + k_max_id_gap) {
            throw input_error(path, "model.vocab", "largest token id " + std::to_string(max_id) + " leaves more than " +
                                                       std::to_string(k_max_id_gap) + " unused ids beyond the " +
                                                       std::to_string(n_listed) + " listed tokens");
        }
        m.tokens.assign(size_t(max_id + 1), std::string());
        m.kinds.assign(size_t(max_id + 1), TOK_UNUSED);
        for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
            const size_t id = size_t(it.value().get<int64_t>());
            m.tokens[id] = it.key();
            m.kinds[id] = TOK_NORMAL;
        }
        for (const json & a : added) {
            const size_t id = size_t(a["id"].get<int64_t>());
            m.tokens[id] = a["content"].get<std::string>();
            m.kinds[id] = a.value("special", false) ? TOK_CONTROL : TOK_USER;
        }
        m.finish();
        if (model.contains("unk_token") && model["unk_token"].is_string()) {
            auto it = m.token_to_id.find(model["unk_token"].get<std::string>());
            if (it != m.token_to_id.end()) m.unk = it->second;
        }

        if (!model.contains("merges") || !model["merges"].is_array()) throw input_error(path, "model.merges", "missing or not an array");
        const json & merges = model["merges"];
        m.merges.reserve(merges.size() * 2);
        std::string a, b;
        for (size_t i = 0; i < merges.size(); ++i) {
            const std::string field = "model.merges[" + std::to_string(i) + "]";
            const json & e = merges[i];
            if (e.is_string()) {
                if (!split_merge(e.get<std::string>(), a, b)) throw input_error(path, field, "expected 'left right'");
            } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
                a = e[0].get<std::string>();
                b = e[1].get<std::string>();
            } else {
                throw input_error(path, field, "expected \"left right\" or [\"left\", \"right\"]");
            }
            m.add_merge(field, int32_t(i), a, b);
        }

        // BOS: a TemplateProcessing post-processor that starts with a special token adds it.
        if (doc.contains("post_processor") && doc["post_processor"].is_object() &&
            doc["post_processor"].value("type", std::string()) == "TemplateProcessing") {
            const json & single = doc["post_processor"]["single"];
            if (single.is_array() && !single.empty() && single[0].is_object() && single[0].contains("SpecialToken")) {
                const std::string s = single[0]["SpecialToken"].value("id", std::string());
                auto it = m.token_to_id.find(s);
                if (it != m.token_to_id.end()) { m.bos = it->second; m.add_bos = true; }
            }
        }
    } catch (const json::exception & e) {
        throw input_error(path, "json", std::string("unexpected structure: ") + e.what());
    }

    // bos/eos names live in tokenizer_config.json next to tokenizer.json, when present.
    const size_t slash = path.find_last_of('/');
    const std::string cfg_path = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) + "tokenizer_config.json";
    struct stat cfg_st {};
    if (::stat(cfg_path.c_str(), &cfg_st) == 0) {
        const json cfg = json_read_file(cfg_path, "json");
        if (cfg.is_object()) {
            auto lookup = [&](const char * k) -> int32_t {
                if (!cfg.contains(k)) return -1;
                auto it = m.token_to_id.find(config_token(cfg[k]));
                return it == m.token_to_id.end() ? -1 : it->second;
            };
            if (m.bos < 0) m.bos = lookup("bos_token");
            m.eos = lookup("eos_token");
            if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) {
                m.add_bos = cfg["add_bos_token"].get<bool>() && m.bos >= 0;
            }
        }
    }
    return tok;
}

} // namespace attnlab
