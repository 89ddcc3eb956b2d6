#pragma once
// A small in-app file browser (no native dialogs under Xvfb or on a bare
// desktop): directories first, model files, checkpoint directories and traces
// marked, one click to enter, double click to open.
#include <string>
#include <vector>

namespace attnlab_gui {

class file_browser {
public:
    explicit file_browser(std::string start_dir);
    // Draws the listing; returns true when the user picked `picked()` to open.
    bool draw(float height);
    const std::string & picked() const { return picked_; }
    const std::string & dir() const { return dir_; }
    void set_dir(const std::string & d);

private:
    struct entry {
        std::string name;
        bool is_dir = false;
        std::string kind;   // "GGUF", "HF checkpoint", "trace", "safetensors", ""
        uintmax_t size = 0;
    };
    void refresh();
    std::string dir_, picked_, error_;
    std::vector<entry> entries_;
    int selected_ = -1;
};

} // namespace attnlab_gui
