#pragma once
// The one way AttnLab writes a file: a reader (or a crash) sees either the old
// file or the whole new one, never a half-written one. Data goes to
// PATH.attnlab-tmp-PID, is fsynced, renamed over PATH, and the directory is
// fsynced so the rename survives a power cut. Any failure removes the
// temporary and throws input_error naming PATH. A temporary left by a killed
// process (kill -9) is removed by the next write of PATH, or of any file in
// its directory under dir_lock: only names of that pattern whose process is
// gone, never another file.
#include <cstddef>
#include <string>

namespace attnlab {

class job_progress;

// Streaming form, for writers that produce their bytes in pieces (safetensors
// tensors, PNG encoders). Destroying it without commit() removes PATH.tmp.
class atomic_file {
public:
    // `cancel` (optional): a job whose cancel request stops the write between
    // pieces with job_cancelled (Ctrl-C reaches a long write); the temporary
    // goes with the object and PATH stays as it was.
    explicit atomic_file(const std::string & path, job_progress * cancel = nullptr);
    ~atomic_file();
    atomic_file(const atomic_file &) = delete;
    atomic_file & operator=(const atomic_file &) = delete;

    void write(const void * data, size_t n);
    void commit();

    const std::string & path() const { return path_; }
    const std::string & tmp_path() const { return tmp_; }

private:
    std::string path_, tmp_;
    job_progress * cancel_ = nullptr;
    int fd_ = -1;
    bool done_ = false;
};

// The temporary of PATH for process pid, and whether `name` is one (any PATH,
// any pid) with *pid set.
std::string atomic_temp_name(const std::string & path, long pid);
bool atomic_temp_parse(const std::string & name, long * pid);
// Removes temporaries in `dir` whose process is gone (all, or of `target`
// only: a file name in dir). Returns how many were removed.
int atomic_temp_cleanup(const std::string & dir, const std::string & target = "");

void write_file_atomic(const std::string & path, const void * data, size_t n, job_progress * cancel = nullptr);
void write_file_atomic(const std::string & path, const std::string & text, job_progress * cancel = nullptr);

// mkdir -p: creates dir and its missing parents. input_error (dir: field:
// "X exists and is not a directory" / "cannot create directory X") names the
// option or key the folder came from.
void dir_create_all(const std::string & dir, const std::string & field);

} // namespace attnlab
