// Spec parser: "name:key=value,key=value".
#include "methods/method_spec.h"

#include <cctype>

#include "base/error.h"

namespace attnlab {

namespace {

std::string trim(const std::string & s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace((unsigned char) s[b])) ++b;
    while (e > b && std::isspace((unsigned char) s[e - 1])) --e;
    return s.substr(b, e - b);
}

bool is_ident(const std::string & s) {
    if (s.empty()) return false;
    for (char c : s) {
        if (!(std::isalnum((unsigned char) c) || c == '_')) return false;
    }
    return true;
}

// How deep specs nest: a value that is itself a spec ("inner=block_topk:B=64")
// is one level more. Counted on the text before anything is split or copied,
// so an 8,500-level spec costs one scan, not gigabytes of nested copies.
int spec_depth(const std::string & text) {
    int depth = 1;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '=') continue;
        size_t j = i + 1;
        // a nested value may be wrapped: "inner=(block_topk:rho=0.2|B=64)"
        while (j < text.size() && (std::isspace((unsigned char) text[j]) || text[j] == '(')) ++j;
        const size_t id = j;
        while (j < text.size() && (std::isalnum((unsigned char) text[j]) || text[j] == '_')) ++j;
        while (j < text.size() && std::isspace((unsigned char) text[j])) ++j;
        if (j > id && j < text.size() && text[j] == ':') ++depth;
    }
    return depth;
}

} // namespace

const std::string * method_spec::find(const std::string & key) const {
    for (const auto & kv : args) {
        if (kv.first == key) return &kv.second;
    }
    return nullptr;
}

method_spec method_spec_parse(const std::string & text) {
    const int depth = spec_depth(text);
    if (depth > k_method_spec_max_depth) {
        const std::string shown = text.size() > 80 ? text.substr(0, 80) + "..." : text;
        throw input_error(shown, "nesting", "specs nested " + std::to_string(depth) + " deep; at most " +
                                                std::to_string(k_method_spec_max_depth) + " allowed");
    }
    method_spec s;
    s.text = text;
    const size_t colon = text.find(':');
    s.name = trim(text.substr(0, colon));
    if (!is_ident(s.name)) {
        throw input_error(text, "name", "expected a method name ([A-Za-z0-9_]+) before ':', got '" + s.name + "'");
    }
    if (colon == std::string::npos) return s;
    const std::string rest = text.substr(colon + 1);
    size_t p = 0;
    while (true) {
        const size_t comma = rest.find(',', p);
        const std::string item = trim(rest.substr(p, comma == std::string::npos ? std::string::npos : comma - p));
        const size_t eq = item.find('=');
        const std::string key = trim(item.substr(0, eq));
        if (!is_ident(key)) {
            throw input_error(text, key.empty() ? "key" : key, "expected key=value ([A-Za-z0-9_]+ key), got '" + item + "'");
        }
        if (eq == std::string::npos) throw input_error(text, key, "missing '=value'");
        const std::string value = trim(item.substr(eq + 1));
        if (value.empty()) throw input_error(text, key, "empty value");
        if (s.find(key)) throw input_error(text, key, "key given twice");
        s.args.emplace_back(key, value);
        if (comma == std::string::npos) break;
        p = comma + 1;
    }
    return s;
}

std::string method_spec_format(const method_spec & s) {
    std::string r = s.name;
    for (size_t i = 0; i < s.args.size(); ++i) {
        r += (i == 0 ? ":" : ",");
        r += s.args[i].first + "=" + s.args[i].second;
    }
    return r;
}

// True when s is "(...)" with the first '(' closed by the last ')'.
static bool wrapped(const std::string & s) {
    if (s.size() < 2 || s.front() != '(' || s.back() != ')') return false;
    int depth = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        depth += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
        if (depth == 0) return i + 1 == s.size();
    }
    return false;
}

std::string method_spec_nest(const std::string & spec_text) {
    const method_spec s = method_spec_parse(spec_text);
    std::string r = s.name;
    for (size_t i = 0; i < s.args.size(); ++i) {
        const std::string & v = s.args[i].second;
        // a value holding '|' is a nested spec of its own: one level deeper
        const bool nested = v.find('|') != std::string::npos && !wrapped(v);
        r += (i == 0 ? ":" : "|") + s.args[i].first + "=" + (nested ? "(" + v + ")" : v);
    }
    return r;
}

std::string method_spec_unnest(const std::string & value) {
    std::string v = wrapped(value) ? value.substr(1, value.size() - 2) : value;
    int depth = 0;
    for (char & c : v) {
        if (c == '(') depth++;
        else if (c == ')') depth--;
        else if (c == '|' && depth == 0) c = ',';
    }
    return v;
}

} // namespace attnlab
