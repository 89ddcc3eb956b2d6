#include "script.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace attnlab_gui {

std::vector<script_line> script_load(const std::string & path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot read the script");
    std::vector<script_line> out;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        auto hash = line.find('#');
        if (hash != std::string::npos) line.resize(hash);
        std::istringstream ss(line);
        script_line s;
        s.line_no = n;
        if (!(ss >> s.cmd)) continue;
        std::string a;
        while (ss >> a) s.args.push_back(a);
        auto p = line.find(s.cmd) + s.cmd.size();
        s.rest = line.substr(p);
        s.rest.erase(0, s.rest.find_first_not_of(" \t"));
        s.rest.erase(s.rest.find_last_not_of(" \t\r") + 1);
        out.push_back(s);
    }
    return out;
}

} // namespace attnlab_gui
