#pragma once
// Spec text of a method or score function: "name" or "name:key=value,...".
// Names and keys are [A-Za-z0-9_]; values are any text without ',' (lists use
// ';', e.g. "global_tokens:P=0;64;128,w=32"). Spaces around tokens are ignored.
#include <string>
#include <utility>
#include <vector>

namespace attnlab {

struct method_spec {
    std::string text;   // as given
    std::string name;
    std::vector<std::pair<std::string, std::string>> args;   // in the given order

    const std::string * find(const std::string & key) const;
};

// Specs nest (max_keys:inner=...) at most this deep.
constexpr int k_method_spec_max_depth = 8;

// Throws input_error(text, field, msg): field "name" for a bad name, the key
// for an empty/duplicate key or a missing '=' or value, "nesting" for a spec
// nested deeper than k_method_spec_max_depth.
method_spec method_spec_parse(const std::string & text);
std::string method_spec_format(const method_spec & s);

// A spec held in another spec's value (max_keys' inner): its ',' are written
// '|', and a value of it that is itself such a spec is wrapped in '(...)', so
// a guard inside a guard re-parses at every depth:
//   max_keys:k=8,inner=max_keys:k=16|inner=(block_topk:rho=0.2|B=64)
// nest: canonical spec -> value text; unnest: value text -> spec text (also
// accepts the hand-written one-level form "block_topk:rho=0.2|B=64").
std::string method_spec_nest(const std::string & spec_text);
std::string method_spec_unnest(const std::string & value);

} // namespace attnlab
