#pragma once
// Shared pieces of attnlab-cli: progress bar, Ctrl-C cancel, JSON printing.
#include <string>

#include <nlohmann/json.hpp>

#include "lab/job.h"

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

} // namespace attnlab_cli
