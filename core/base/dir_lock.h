#pragma once
// One writer per output. A sweep directory, a scenario run's output, a
// capture's file: a second writer is refused with input_error naming the
// holder (pid and host); a lock left by a dead process is taken over.
//
// Mechanism: flock(2) on a lock file (DIR/.attnlab-lock for a directory,
// PATH.attnlab-lock beside a file output). The kernel drops the lock when its
// holder dies, however it dies, so a stale lock is simply free; the file's
// text ("pid P host H since T") only names the holder in the refusal.
#include <string>

namespace attnlab {

class dir_lock {
public:
    enum target_kind { directory, file };
    // Locks `path` (a directory is created if missing). `field` names the
    // option or key the path came from, for the error.
    dir_lock(const std::string & path, target_kind kind, const std::string & field);
    ~dir_lock();
    dir_lock(const dir_lock &) = delete;
    dir_lock & operator=(const dir_lock &) = delete;
    dir_lock(dir_lock && o) noexcept;

    const std::string & lock_path() const { return lock_path_; }

private:
    std::string lock_path_;
    int fd_ = -1;
};

// The lock file of an output path (what dir_lock creates).
std::string dir_lock_path(const std::string & path, dir_lock::target_kind kind);

} // namespace attnlab
