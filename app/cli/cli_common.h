#pragma once
// Shared pieces of attnlab-cli: progress bar, Ctrl-C cancel, JSON printing.
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/job.h"

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

} // namespace attnlab_cli
