#pragma once
// A small event bus: views publish and subscribe here and never call each
// other. Events are queued and dispatched on the main thread once per frame,
// so a handler never runs in the middle of another view's drawContent().
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace attnlab_gui {

enum class event_kind {
    model_loaded,      // app_state::model / facts changed
    capture_loaded,    // app_state::cap changed (new tokens, layers)
    head_selected,     // layer (index into the capture) and head
    method_changed,    // app_state::method_spec changed
    open_view,         // text = view id
};

struct event {
    event(event_kind k, int l = 0, int h = 0, std::string t = {}) : kind(k), layer(l), head(h), text(std::move(t)) {}
    event_kind kind;
    int layer = 0;
    int head = 0;
    std::string text;
};

class event_bus {
public:
    using handler = std::function<void(const event &)>;
    void subscribe(event_kind k, handler h) { handlers_[k].push_back(std::move(h)); }
    void publish(event e) { queue_.push_back(std::move(e)); }
    // Main thread; events published by handlers are delivered in the same call.
    void dispatch() {
        for (size_t i = 0; i < queue_.size() && i < 1000; ++i) {
            event e = queue_[i];
            auto it = handlers_.find(e.kind);
            if (it == handlers_.end()) continue;
            for (auto & h : it->second) h(e);
        }
        queue_.clear();
    }

private:
    std::map<event_kind, std::vector<handler>> handlers_;
    std::vector<event> queue_;
};

} // namespace attnlab_gui
