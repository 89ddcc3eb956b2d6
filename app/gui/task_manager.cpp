#include "task_manager.h"

#include <atomic>

#include "base/error.h"

namespace attnlab_gui {

const char * task_state_name(task_state s) {
    switch (s) {
        case task_state::running: return "running";
        case task_state::done: return "done";
        case task_state::cancelled: return "cancelled";
        case task_state::failed: return "failed";
    }
    return "?";
}

struct task_manager::task {
    int id = 0;
    std::string name, group;
    attnlab::job_progress progress;
    std::thread thread;
    std::atomic<bool> finished{false};
    task_state state = task_state::running;  // written by the worker before `finished`
    std::string error;
    apply_fn apply;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    double seconds = 0.0;
};

task_manager::~task_manager() {
    cancel_all();
    std::vector<std::shared_ptr<task>> ts;
    {
        std::lock_guard<std::mutex> lock(mu_);
        ts = tasks_;
    }
    for (auto & t : ts) {
        if (t->thread.joinable()) t->thread.join();
    }
}

int task_manager::submit(const std::string & name, const std::string & group, work_fn work) {
    if (!group.empty()) cancel_group(group);
    auto t = std::make_shared<task>();
    t->name = name;
    t->group = group;
    {
        std::lock_guard<std::mutex> lock(mu_);
        t->id = next_id_++;
        tasks_.push_back(t);
    }
    task * raw = t.get();
    t->thread = std::thread([raw, work = std::move(work)]() {
        try {
            raw->apply = work(raw->progress);
            raw->state = raw->progress.cancelled() ? task_state::cancelled : task_state::done;
            if (raw->state == task_state::cancelled) raw->apply = nullptr;
        } catch (const attnlab::job_cancelled &) {
            raw->state = task_state::cancelled;
        } catch (const std::exception & e) {
            raw->state = task_state::failed;
            raw->error = e.what();
        } catch (...) {
            raw->state = task_state::failed;
            raw->error = "unknown error";
        }
        raw->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - raw->t0).count();
        raw->finished.store(true, std::memory_order_release);
    });
    return t->id;
}

void task_manager::cancel(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto & t : tasks_) {
        if (t->id == id) t->progress.cancel();
    }
}

void task_manager::cancel_group(const std::string & group) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto & t : tasks_) {
        if (t->group == group) t->progress.cancel();
    }
}

void task_manager::cancel_all() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto & t : tasks_) t->progress.cancel();
}

int task_manager::apply_finished() {
    std::vector<std::shared_ptr<task>> done;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto it = tasks_.begin(); it != tasks_.end();) {
            if ((*it)->finished.load(std::memory_order_acquire)) {
                done.push_back(*it);
                it = tasks_.erase(it);
            } else {
                ++it;
            }
        }
    }
    int n = 0;
    for (auto & t : done) {
        t->thread.join();
        if (t->apply) {
            try {
                t->apply();
            } catch (const std::exception & e) {
                t->state = task_state::failed;
                t->error = e.what();
            }
            ++n;
        }
        task_info ti;
        ti.id = t->id;
        ti.name = t->name;
        ti.group = t->group;
        ti.state = t->state;
        ti.fraction = 1.0;
        ti.error = t->error;
        ti.seconds = t->seconds;
        std::lock_guard<std::mutex> lock(mu_);
        history_.insert(history_.begin(), ti);
        if (history_.size() > 50) history_.pop_back();
    }
    return n;
}

bool task_manager::busy() const {
    std::lock_guard<std::mutex> lock(mu_);
    return !tasks_.empty();
}

bool task_manager::busy(const std::string & group) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto & t : tasks_) {
        if (t->group == group) return true;
    }
    return false;
}

std::vector<task_info> task_manager::snapshot() const {
    std::vector<task_info> out;
    std::lock_guard<std::mutex> lock(mu_);
    auto now = std::chrono::steady_clock::now();
    for (auto & t : tasks_) {
        task_info ti;
        ti.id = t->id;
        ti.name = t->name;
        ti.group = t->group;
        ti.state = task_state::running;
        ti.fraction = t->progress.fraction();
        ti.stage = t->progress.stage();
        ti.seconds = std::chrono::duration<double>(now - t->t0).count();
        out.push_back(ti);
    }
    return out;
}

std::vector<task_info> task_manager::history() const {
    std::lock_guard<std::mutex> lock(mu_);
    return history_;
}

} // namespace attnlab_gui
