#include "session.h"

#include <cstdlib>

#include "base/atomic_write.h"
#include "base/error.h"
#include "base/json_read.h"

namespace attnlab_gui {

std::string session_dir() {
    const char * home = std::getenv("HOME");
    const std::string dir = std::string(home && *home ? home : ".") + "/.config/attnlab";
    try {
        attnlab::dir_create_all(dir, "session");
    } catch (const std::exception &) {
        // reported when the session is written; the app runs without one
    }
    return dir;
}

session session_read(const std::string & path) {
    const nlohmann::json j = attnlab::json_read_file(path, "session");
    if (!j.is_object()) throw attnlab::input_error(path, "session", "not a JSON object");
    session s;
    auto str = [&](const char * k, std::string & v) {
        if (!j.contains(k)) return;
        if (!j.at(k).is_string()) throw attnlab::input_error(path, k, "not a string");
        v = j.at(k).get<std::string>();
    };
    auto integer = [&](const char * k, int & v, int lo, int hi) {
        if (!j.contains(k)) return;
        if (!j.at(k).is_number_integer() || j.at(k).get<long long>() < lo || j.at(k).get<long long>() > hi)
            throw attnlab::input_error(path, k, "not an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        v = int(j.at(k).get<long long>());
    };
    str("source", s.source);
    str("text", s.text_spec);
    str("typed_text", s.typed_text);
    str("layers", s.layers_spec);
    str("method", s.method_spec);
    str("view", s.view);
    integer("ctx", s.ctx, 1, 1 << 24);
    integer("layer_index", s.layer_index, 0, 1 << 16);
    integer("head", s.head, 0, 1 << 16);
    if (j.contains("ui_scale")) {
        if (!j.at("ui_scale").is_number() || !(j.at("ui_scale").get<double>() >= 0.5 && j.at("ui_scale").get<double>() <= 4.0))
            throw attnlab::input_error(path, "ui_scale", "not a number in [0.5, 4]");
        s.ui_scale = j.at("ui_scale").get<float>();
    }
    if (j.contains("closed_views")) {
        if (!j.at("closed_views").is_array()) throw attnlab::input_error(path, "closed_views", "not an array");
        for (const auto & v : j.at("closed_views")) {
            if (!v.is_string()) throw attnlab::input_error(path, "closed_views", "not a string");
            s.closed_views.push_back(v.get<std::string>());
        }
    }
    if (j.contains("views")) {
        if (!j.at("views").is_object()) throw attnlab::input_error(path, "views", "not an object");
        s.view_settings = j.at("views");
    }
    return s;
}

void session_write(const std::string & path, const session & s) {
    nlohmann::json j = {{"schema", "attnlab.session/1"},
                        {"source", s.source},
                        {"text", s.text_spec},
                        {"typed_text", s.typed_text},
                        {"layers", s.layers_spec},
                        {"method", s.method_spec},
                        {"view", s.view},
                        {"ctx", s.ctx},
                        {"layer_index", s.layer_index},
                        {"head", s.head},
                        {"ui_scale", s.ui_scale},
                        {"closed_views", s.closed_views},
                        {"views", s.view_settings}};
    attnlab::write_file_atomic(path, j.dump(2) + "\n");
}

} // namespace attnlab_gui
