#pragma once
// Errors for bad input. Every parser throws input_error naming the file and the
// field it was reading, so the CLI and the GUI can show one clear line and the
// caller never sees a crash or a half-built object.
#include <stdexcept>
#include <string>

namespace attnlab {

class input_error : public std::runtime_error {
public:
    input_error(std::string file, std::string field, const std::string & msg)
        : std::runtime_error(file + ": " + field + ": " + msg), file_(std::move(file)), field_(std::move(field)) {}
    const std::string & file() const { return file_; }
    const std::string & field() const { return field_; }
private:
    std::string file_;
    std::string field_;
};

// Thrown when a job sees its cancel flag; callers treat it as a clean stop.
class job_cancelled : public std::runtime_error {
public:
    job_cancelled() : std::runtime_error("cancelled") {}
};

} // namespace attnlab
