#pragma once
// Background jobs for the GUI. Engine work never runs on the main thread: a
// task's work function runs on its own worker thread with a job_progress
// (fraction, stage, cancel) and returns a closure that applies its result;
// the main thread runs every finished task's closure once per frame, under
// one lock (apply_finished), so views only ever see complete results.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/job.h"

namespace attnlab_gui {

using apply_fn = std::function<void()>;
using work_fn = std::function<apply_fn(attnlab::job_progress &)>;

enum class task_state { running, done, cancelled, failed };
const char * task_state_name(task_state s);

struct task_info {
    int id = 0;
    std::string name;
    std::string group;     // a new task of the same group cancels the old one
    task_state state = task_state::running;
    double fraction = 0.0;
    std::string stage;
    std::string error;
    double seconds = 0.0;  // so far, or in total once finished
};

class task_manager {
public:
    ~task_manager();
    // Starts `work` on a worker thread. A non-empty group cancels any running
    // task of that group first (e.g. a newer attention map supersedes an older one).
    int submit(const std::string & name, const std::string & group, work_fn work);
    void cancel(int id);
    void cancel_group(const std::string & group);
    void cancel_all();
    // Main thread, once per frame: runs the apply closures of finished tasks
    // (in finishing order) and reaps their threads. Returns how many it applied.
    int apply_finished();
    bool busy() const;               // any task running
    bool busy(const std::string & group) const;
    std::vector<task_info> snapshot() const;   // running first, then recent finished
    // Results of the last finished tasks, newest first (for the status bar).
    std::vector<task_info> history() const;

private:
    struct task;
    mutable std::mutex mu_;
    std::vector<std::shared_ptr<task>> tasks_;
    std::vector<task_info> history_;
    int next_id_ = 1;
};

} // namespace attnlab_gui
