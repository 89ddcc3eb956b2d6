// The scenario schema: a generic validator driven by the key definitions of
// the common keys and of the kind's registry entry (see kind.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "attention/selection.h"
#include "base/error.h"
#include "base/read_file.h"
#include "base/json_read.h"
#include "lab/scenario.h"
#include "lab/scenario/kind.h"

namespace attnlab {

using nlohmann::json;

// ---- key builders and the shared keys

scenario_key key_of(std::string name, key_type t, json def, double lo, double hi, bool lo_open) {
    scenario_key k;
    k.name = std::move(name);
    k.type = t;
    k.def = std::move(def);
    k.lo = lo;
    k.hi = hi;
    k.lo_open = lo_open;
    return k;
}

scenario_key key_choice(std::string name, key_type t, json def, std::vector<std::string> choices) {
    scenario_key k = key_of(std::move(name), t, std::move(def));
    k.choices = std::move(choices);
    return k;
}

scenario_key key_non_empty(scenario_key k) {
    k.non_empty = true;
    return k;
}

namespace {
const char * const k_default_model = "assets/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::vector<std::string> k_outputs = {"report", "csv", "json", "figures"};

std::string check_block(const json & v) { return block_size_valid(v.get<int>()) ? "" : "must be one of 16, 32, 64, 128"; }

scenario_key key_seed() { return key_of("seed", key_type::integer, 1, 0, 2147483647.0); }
scenario_key key_source() { return key_of("source", key_type::str, k_default_model); }
scenario_key key_text() { return key_of("text", key_type::str, "kjv:eval"); }
scenario_key key_calib_text() { return key_of("calib_text", key_type::str, "kjv:calib"); }
scenario_key key_layers() { return key_of("layers", key_type::int_list, json::array(), 0, 1000); }   // [] = all
} // namespace

scenario_key key_block() {
    scenario_key k = key_of("block", key_type::integer, 64, 16, 128);
    k.check = check_block;
    return k;
}
scenario_key key_densities(json def) { return key_non_empty(key_of("densities", key_type::real_list, std::move(def), 0.0, 1.0, true)); }
scenario_key key_recall_grid() {
    return key_non_empty(key_of("grid", key_type::real_list, {0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0}, 0, 1, true));
}

namespace {
std::vector<scenario_key> keys_then(std::vector<scenario_key> head, const std::vector<scenario_key> & own) {
    head.insert(head.end(), own.begin(), own.end());
    return head;
}
} // namespace

std::vector<scenario_key> model_kind_keys(std::vector<scenario_key> own) { return keys_then({key_seed(), key_source(), key_text()}, own); }

std::vector<scenario_key> calibrated_kind_keys(std::vector<scenario_key> own) {
    return keys_then(model_kind_keys({key_calib_text(), key_of("ctx", key_type::integer, 1024, 64, k_scenario_max_ctx),
                                      key_of("calib_windows", key_type::integer, 4, 1, 64), key_layers(), key_block()}),
                     own);
}

std::vector<scenario_key> sim_kind_keys(const char * model_preset, std::vector<scenario_key> own) {
    return keys_then({key_seed(), key_of("source", key_type::str, model_preset), key_of("hw", key_type::str, "h100-sxm")}, own);
}

// ---- the generic validator

namespace {

std::string join(const std::vector<std::string> & v, const char * sep = ", ") {
    std::string r;
    for (size_t i = 0; i < v.size(); ++i) r += (i ? sep : "") + v[i];
    return r;
}

std::string num_text(double x) {
    char b[64];
    std::snprintf(b, sizeof b, "%g", x);
    return b;
}

std::string range_text(const scenario_key & k) {
    return std::string(k.lo_open ? "(" : "[") + num_text(k.lo) + ", " + num_text(k.hi) + "]";
}

bool in_range(const scenario_key & k, double v) { return (k.lo_open ? v > k.lo : v >= k.lo) && v <= k.hi; }

json check_number(const std::string & file, const std::string & path, const scenario_key & k, const json & v, bool integer) {
    if (!v.is_number()) throw input_error(file, path, integer ? "must be an integer" : "must be a number");
    if (integer && !v.is_number_integer()) throw input_error(file, path, "must be an integer, not " + v.dump());
    const double d = v.get<double>();
    if (!std::isfinite(d) || !in_range(k, d)) throw input_error(file, path, v.dump() + " is outside " + range_text(k));
    return v;
}

json check_string(const std::string & file, const std::string & path, const scenario_key & k, const json & v) {
    if (!v.is_string()) throw input_error(file, path, "must be a string");
    const std::string s = v.get<std::string>();
    if (s.empty()) throw input_error(file, path, "must not be empty");
    if (!k.choices.empty() && std::find(k.choices.begin(), k.choices.end(), s) == k.choices.end()) {
        throw input_error(file, path, "'" + s + "' is not one of: " + join(k.choices));
    }
    return v;
}

json check_list(const std::string & file, const std::string & path, const scenario_key & k, const json & v) {
    const bool strings = k.type == key_type::str_list;
    json arr = v;
    // A single value stands for a list of one (ctx: 2048).
    if (!v.is_array()) {
        if (strings ? !v.is_string() : !v.is_number()) {
            throw input_error(file, path, std::string("must be a list of ") +
                                              (strings ? "strings" : k.type == key_type::int_list ? "integers" : "numbers"));
        }
        arr = json::array({v});
    }
    if (k.non_empty && arr.empty()) throw input_error(file, path, "must not be empty");
    json out = json::array();
    for (size_t i = 0; i < arr.size(); ++i) {
        const std::string p = path + "[" + std::to_string(i) + "]";
        if (strings) out.push_back(check_string(file, p, k, arr[i]));
        else out.push_back(check_number(file, p, k, arr[i], k.type == key_type::int_list));
    }
    return out;
}

json check_value(const std::string & file, const std::string & path, const scenario_key & k, const json & v) {
    json out = v;
    switch (k.type) {
    case key_type::str: out = check_string(file, path, k, v); break;
    case key_type::boolean:
        if (!v.is_boolean()) throw input_error(file, path, "must be true or false");
        break;
    case key_type::integer: out = check_number(file, path, k, v, true); break;
    case key_type::real: out = check_number(file, path, k, v, false); break;
    case key_type::int_list:
    case key_type::real_list:
    case key_type::str_list: out = check_list(file, path, k, v); break;
    }
    if (k.check) {
        const std::string msg = k.check(out);
        if (!msg.empty()) throw input_error(file, path, msg);
    }
    return out;
}

const scenario_key * find_key(const std::vector<scenario_key> & keys, const std::string & name) {
    for (const auto & k : keys) {
        if (k.name == name) return &k;
    }
    return nullptr;
}

std::vector<std::string> key_names(const std::vector<scenario_key> & keys) {
    std::vector<std::string> r;
    for (const auto & k : keys) r.push_back(k.name);
    return r;
}

const scenario_kind & parse_kind(const std::string & file, const json & j) {
    if (!j.contains("kind")) throw input_error(file, "kind", "missing (one of: " + join(scenario_kinds()) + ")");
    if (!j["kind"].is_string()) throw input_error(file, "kind", "must be a string");
    const std::string kind = j["kind"].get<std::string>();
    const scenario_kind * k = scenario_kind_find(kind);
    if (!k) throw input_error(file, "kind", "'" + kind + "' is not one of: " + join(scenario_kinds()));
    return *k;
}

// The top-level keys, checked, with the defaults filled in.
json parse_top(const std::string & file, const json & j, const scenario_kind & kind, const std::vector<scenario_key> & common) {
    json cfg = json::object();
    cfg["schema"] = k_scenario_schema;
    cfg["kind"] = kind.name;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string & name = it.key();
        if (name == "schema" || name == "kind" || name == "small") continue;
        const scenario_key * k = find_key(common, name);
        if (!k) k = find_key(kind.keys, name);
        if (!k) {
            std::vector<std::string> valid = {"schema", "kind", "small"};
            for (const auto & c : common) valid.push_back(c.name);
            for (const auto & c : kind.keys) valid.push_back(c.name);
            throw input_error(file, name, "unknown key for a " + kind.name + " scenario (valid: " + join(valid) + ")");
        }
        cfg[name] = check_value(file, name, *k, it.value());
    }
    for (const std::vector<scenario_key> * list : {&common, &kind.keys}) {
        for (const auto & k : *list) {
            if (cfg.contains(k.name)) continue;
            if (k.def.is_null()) throw input_error(file, k.name, "missing (required for a " + kind.name + " scenario)");
            // defaults are checked too: a kind's default view the front end lacks is refused
            cfg[k.name] = check_value(file, k.name, k, k.def);
        }
    }
    if (kind.check) kind.check(file, "", cfg);
    return cfg;
}

// The "small" overrides: only the kind's keys, checked like the top level
// (paths small.KEY) and, merged, by the kind's check, even when not applied.
json parse_small(const std::string & file, const json & j, const scenario_kind & kind, const json & cfg, json & merged) {
    json sm = json::object();
    merged = cfg;
    if (!j.contains("small")) return sm;
    if (!j["small"].is_object()) throw input_error(file, "small", "must be an object of overrides");
    for (auto it = j["small"].begin(); it != j["small"].end(); ++it) {
        const scenario_key * k = find_key(kind.keys, it.key());
        if (!k) {
            throw input_error(file, "small." + it.key(),
                              "not a key \"small\" can override for a " + kind.name + " scenario (valid: " + join(key_names(kind.keys)) + ")");
        }
        sm[it.key()] = check_value(file, "small." + it.key(), *k, it.value());
    }
    for (auto it = sm.begin(); it != sm.end(); ++it) merged[it.key()] = it.value();
    if (kind.check) kind.check(file, "small.", merged);
    return sm;
}

} // namespace

const std::vector<std::string> & scenario_kinds() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const scenario_kind & k : scenario_kind_table()) v.push_back(k.name);
        return v;
    }();
    return names;
}

scenario scenario_parse(const std::string & text, const std::string & file, bool small, const std::vector<std::string> & view_ids) {
    // An empty list would read as "any view" (key_choice's {}): refuse it.
    if (view_ids.empty()) throw std::invalid_argument("scenario_parse: no view ids given (app/view_ids.h)");
    const json j = json_parse(file, "json", text);
    if (!j.is_object()) throw input_error(file, "json", "a scenario is a JSON object");
    if (!j.contains("schema")) throw input_error(file, "schema", "missing (want \"" + std::string(k_scenario_schema) + "\")");
    if (!j["schema"].is_string() || j["schema"].get<std::string>() != k_scenario_schema) {
        throw input_error(file, "schema", j["schema"].dump() + " is not \"" + std::string(k_scenario_schema) + "\"");
    }
    const scenario_kind & kind = parse_kind(file, j);
    // views: any non-empty names unless the front end passes its list
    const std::vector<scenario_key> common = {key_of("title", key_type::str, nullptr), key_of("description", key_type::str, nullptr),
                                              key_choice("views", key_type::str_list, kind.views, view_ids),
                                              key_choice("outputs", key_type::str_list, k_outputs, k_outputs)};
    json cfg = parse_top(file, j, kind, common);
    json merged;
    const json sm = parse_small(file, j, kind, cfg, merged);
    if (small) cfg = merged;
    cfg["small"] = sm;
    scenario s;
    s.file = file;
    s.kind = kind.name;
    s.small = small;
    s.title = cfg["title"].get<std::string>();
    s.description = cfg["description"].get<std::string>();
    s.cfg = cfg;
    return s;
}

scenario scenario_load(const std::string & path, bool small, const std::vector<std::string> & view_ids) {
    return scenario_parse(read_file(path, "file", k_json_max_file_bytes), path, small, view_ids);
}

scenario scenario_from_json(const json & cfg, const std::string & file, const std::vector<std::string> & view_ids) {
    return scenario_parse(cfg.dump(), file, false, view_ids);
}

} // namespace attnlab
