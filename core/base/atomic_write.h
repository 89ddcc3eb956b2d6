#pragma once
// The one way AttnLab writes a file: a reader (or a crash) sees either the old
// file or the whole new one, never a half-written one. Data goes to PATH.tmp,
// is fsynced, renamed over PATH, and the directory is fsynced so the rename
// survives a power cut. Any failure removes the temporary and throws
// input_error naming PATH.
#include <cstddef>
#include <string>

namespace attnlab {

// Streaming form, for writers that produce their bytes in pieces (safetensors
// tensors, PNG encoders). Destroying it without commit() removes PATH.tmp.
class atomic_file {
public:
    explicit atomic_file(const std::string & path);
    ~atomic_file();
    atomic_file(const atomic_file &) = delete;
    atomic_file & operator=(const atomic_file &) = delete;

    void write(const void * data, size_t n);
    void commit();

    const std::string & path() const { return path_; }
    const std::string & tmp_path() const { return tmp_; }

private:
    std::string path_, tmp_;
    int fd_ = -1;
    bool done_ = false;
};

void write_file_atomic(const std::string & path, const void * data, size_t n);
void write_file_atomic(const std::string & path, const std::string & text);

// mkdir -p: creates dir and its missing parents. input_error (dir: field:
// "X exists and is not a directory" / "cannot create directory X") names the
// option or key the folder came from.
void dir_create_all(const std::string & dir, const std::string & field);

} // namespace attnlab
