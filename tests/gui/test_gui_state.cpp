// The app's state without a display [gui_state]: the recent list and the
// session file (app/gui/app_state.h, session.h). Run with HOME set to a
// temporary folder (the ctest entry does), so the user's files are untouched.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "../../app/gui/app_state.h"
#include "../../app/gui/session.h"
#include "base/error.h"

using namespace attnlab_gui;
namespace fs = std::filesystem;

namespace {

std::string data(const std::string & f) { return fs::absolute("tests/data/" + f).string(); }

std::vector<std::string> read_lines(const std::string & path) {
    std::vector<std::string> v;
    std::ifstream in(path);
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
}

// Waits for the load task, applies it (a finished task stays listed until
// the frame loop applies it) and checks that it succeeded.
void wait_idle(app_state & st) {
    for (int i = 0; i < 600 && st.tasks.busy(); ++i) {
        st.tasks.apply_finished();
        if (st.tasks.busy()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    st.tasks.apply_finished();
    const auto h = st.tasks.history();
    REQUIRE_FALSE(h.empty());
    INFO(h.front().name << ": " << h.front().error);
    REQUIRE(h.front().state == task_state::done);
}

} // namespace

// Clicking a recent entry other than the first passed a reference into the
// list that opening reorders: the list (and recent.txt) got a corrupted
// entry and the wrong file opened (issue 14). Opening an entry by reference,
// as the Source view and the File menu do, must move exactly that path to
// the front.
TEST_CASE("opening a recent entry by reference moves that path to the front", "[gui_state]") {
    const char * home = std::getenv("HOME");
    REQUIRE(home);
    REQUIRE(std::string(home).find("attnlab-gui-state") != std::string::npos);   // the test's own HOME
    fs::remove_all(home);   // a fresh HOME each run (ctest names it; it need not exist yet)
    fs::create_directories(home);
    // three loadable sources: a model directory, a trace and a copy of it
    const std::string a = data("tiny_llama_hd64"), b = data("trace_tiny_llama.safetensors");
    const std::string c = std::string(home) + "/trace_copy.safetensors";
    fs::copy_file(b, c, fs::copy_options::overwrite_existing);
    REQUIRE(fs::exists(a));
    REQUIRE(fs::exists(b));
    REQUIRE(fs::exists(c));
    app_state st;
    for (const std::string & p : {c, b, a}) {
        st.open_path(p);
        wait_idle(st);
        REQUIRE(st.load_error.empty());
    }
    REQUIRE(st.recent == std::vector<std::string>{a, b, c});
    st.open_path(st.recent[1]);   // what a click on the second entry does
    wait_idle(st);
    CHECK(st.load_error.empty());
    CHECK(st.recent == std::vector<std::string>{b, a, c});
    CHECK(st.source_path == b);
    CHECK(read_lines(std::string(home) + "/.config/attnlab/recent.txt") == std::vector<std::string>{b, a, c});
    st.open_path(st.recent[2]);
    wait_idle(st);
    CHECK(st.recent == std::vector<std::string>{c, b, a});
    CHECK(st.source_path == c);
}

TEST_CASE("a missing file is reported as missing, and the recent list keeps its entries", "[gui_state]") {
    app_state st;
    const auto before = st.recent;
    st.open_path(data("no_such_model.gguf"));
    CHECK(st.load_error.find("no such file or directory") != std::string::npos);
    CHECK(st.recent == before);
}

TEST_CASE("the session file round-trips and a bad one is refused by field", "[gui_state]") {
    const std::string dir = session_dir();
    const std::string path = dir + "/session_test.json";
    session s;
    s.source = "/some/model.gguf";
    s.text_spec = "kjv:calib";
    s.method_spec = "sinks_window:g=4,w=256";
    s.view = "masks";
    s.ctx = 4096;
    s.layer_index = 7;
    s.head = 3;
    s.ui_scale = 1.5f;
    s.closed_views = {"kernels"};
    s.view_settings["tradeoffs"] = {{"sweep_dir", "bench/results/x"}};
    session_write(path, s);
    const session r = session_read(path);
    CHECK(r.source == s.source);
    CHECK(r.text_spec == s.text_spec);
    CHECK(r.method_spec == s.method_spec);
    CHECK(r.view == s.view);
    CHECK(r.ctx == 4096);
    CHECK(r.layer_index == 7);
    CHECK(r.head == 3);
    CHECK(r.ui_scale == Approx(1.5f));
    CHECK(r.closed_views == s.closed_views);
    CHECK(r.view_settings["tradeoffs"]["sweep_dir"] == "bench/results/x");
    for (const auto & bad : {std::string("{\"ctx\": -5}"), std::string("{\"ctx\": \"big\"}"), std::string("[1,2]"),
                             std::string("{\"ui_scale\": 100}"), std::string("{\"closed_views\": [3]}"),
                             std::string("{\"text\": ")}) {
        { std::ofstream(path) << bad; }
        try {
            session_read(path);
            FAIL("accepted: " + bad);
        } catch (const attnlab::input_error & e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find(path) != std::string::npos);
        }
    }
    fs::remove(path);
}
