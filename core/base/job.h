#pragma once
// Progress and cancellation for long jobs. Core code calls job_step() at
// natural boundaries (a layer, a window, a row of a sweep); the CLI prints a
// bar, the GUI polls the same object from its frame loop.
#include <atomic>
#include <mutex>
#include <string>

#include "base/error.h"

namespace attnlab {

class job_progress {
public:
    void report(double fraction, const std::string & stage) {
        fraction_.store(fraction, std::memory_order_relaxed);
        std::lock_guard<std::mutex> lock(mu_);
        stage_ = stage;
    }
    double fraction() const { return fraction_.load(std::memory_order_relaxed); }
    std::string stage() const {
        std::lock_guard<std::mutex> lock(mu_);
        return stage_;
    }
    void cancel() { cancel_.store(true); }
    bool cancelled() const { return cancel_.load(); }

private:
    std::atomic<double> fraction_{0.0};
    std::atomic<bool> cancel_{false};
    mutable std::mutex mu_;
    std::string stage_;
};

// Report progress (if anyone listens) and stop with job_cancelled when asked to.
inline void job_step(job_progress * p, double fraction, const std::string & stage) {
    if (!p) return;
    if (p->cancelled()) throw job_cancelled();
    p->report(fraction, stage);
}

} // namespace attnlab
