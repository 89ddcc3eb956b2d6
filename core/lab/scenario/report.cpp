// Running a scenario: the kind's driver from the registry, then the files
// (report.md, results.csv, results.json, report.json) and the snapshot.
#include <algorithm>
#include <fstream>
#include <omp.h>
#include <sstream>
#include <sys/stat.h>

#include "base/atomic_write.h"
#include "base/data_path.h"
#include "base/error.h"
#include "base/json_read.h"
#include "base/job.h"
#include "lab/scenario.h"
#include "lab/scenario/common.h"
#include "lab/scenario/kind.h"
#include "lab/snapshot.h"

namespace attnlab {

using nlohmann::json;

namespace {

const scenario_kind & kind_of(const scenario & s) {
    const scenario_kind * k = scenario_kind_find(s.kind);
    if (!k) throw input_error(s.file, "kind", "'" + s.kind + "' has no runner");
    return *k;
}

std::string csv_cell(const json & v) {
    std::string s;
    if (v.is_string()) s = v.get<std::string>();
    else if (v.is_null()) s = "";
    else if (v.is_number_float()) s = fmt_num("%.17g", v.get<double>());
    else s = v.dump();
    if (s.find_first_of(",\"\n") != std::string::npos) {
        std::string q = "\"";
        for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
        return q + "\"";
    }
    return s;
}

void write_csv(const scenario_out & out, const std::string & path) {
    std::string csv;
    for (size_t i = 0; i < out.csv_columns.size(); ++i) csv += (i ? "," : "") + out.csv_columns[i];
    csv += "\n";
    for (const auto & r : out.csv_rows) {
        for (size_t i = 0; i < out.csv_columns.size(); ++i) {
            const std::string & col = out.csv_columns[i];
            csv += (i ? "," : "") + (r.contains(col) ? csv_cell(r[col]) : std::string());
        }
        csv += "\n";
    }
    write_file_atomic(path, csv);
}

std::string report_md(const scenario & s, const scenario_out & out) {
    std::ostringstream md;
    md << "# " << s.title << "\n\n" << s.description << "\n\n";
    md << "Scenario `" << (s.file.empty() ? "(text)" : s.file.substr(s.file.find_last_of('/') + 1)) << "`, kind `" << s.kind << "`"
       << (s.small ? ", **small** (CI) size" : ", full size") << ". ";
    if (out.inputs.contains("model")) {
        md << "Model " << out.inputs["model"]["id"].get<std::string>() << " (sha256 "
           << out.inputs["model"]["sha256"].get<std::string>().substr(0, 12) << "…). ";
    }
    if (out.inputs.contains("text")) md << "Text " << out.inputs["text"]["spec"].get<std::string>() << ". ";
    md << "Numbers: [results.csv](results.csv), [results.json](results.json), [report.json](report.json).\n\n";
    md << out.md.str();
    md << "## Run\n\n" << fmt_num("%.1f", out.timings["total_s"].get<double>()) << " s wall on " << omp_get_max_threads()
       << " thread(s) (timings are in report.json, not in the metrics).\n\n<details><summary>Scenario as run</summary>\n\n```json\n"
       << s.cfg.dump(2) << "\n```\n</details>\n";
    return md.str();
}

} // namespace

bool scenario_needs_model(const scenario & s) { return kind_of(s).needs_model; }

std::string scenario_resolve_path(const std::string & path) {
    struct stat st;
    if (path.empty() || path[0] == '/' || stat(path.c_str(), &st) == 0) return path;
    const std::string alt = attnlab::data_path(path);
    return stat(alt.c_str(), &st) == 0 ? alt : path;
}

json scenario_run(const scenario & s, const std::string & out_dir, job_progress * progress) {
    const auto t0 = scenario_clock::now();
    const scenario_kind & kind = kind_of(s);
    make_dirs(out_dir);
    scenario_out out;
    out.dir = out_dir;
    const std::vector<std::string> outputs = s.cfg["outputs"].get<std::vector<std::string>>();
    const auto want = [&](const char * o) { return std::find(outputs.begin(), outputs.end(), o) != outputs.end(); };
    out.figures = want("figures");
    out.seeds["scenario"] = s.cfg["seed"];
    if (s.shard_count > 1 && !kind.shards) {
        throw input_error(s.file, "shard", "only sweep scenarios split into shards (this one is " + s.kind + ")");
    }
    if (s.device != "cpu" && !(s.device == "cuda" && kind.gpu)) {
        throw input_error(s.file, "device", s.device == "cuda" ? "a " + s.kind + " scenario runs on the CPU only (sweep scenarios run on a GPU)"
                                                               : "device must be cpu or cuda, not '" + s.device + "'");
    }
    out.inputs["device"] = {{"kind", s.device}};
    kind.run(s, out, progress);
    job_step(progress, 1.0, "writing report");
    out.timings["total_s"] = secs_since(t0);
    out.timings["threads"] = omp_get_max_threads();

    if (want("csv") && !kind.writes_own_csv) write_csv(out, out_dir + "/results.csv");
    if (want("json")) write_file_atomic(out_dir + "/results.json", json{{"kind", s.kind}, {"metrics", out.metrics}}.dump(2) + "\n");
    const json report = {{"scenario", s.cfg},     {"small", s.small},     {"inputs", out.inputs},
                         {"methods", out.methods}, {"trained", out.trained}, {"seeds", out.seeds},
                         {"threads", omp_get_max_threads()}, {"metrics", out.metrics}, {"timings", out.timings},
                         {"figures", out.figure_files}};
    write_file_atomic(out_dir + "/report.json", report.dump(2) + "\n");
    if (want("report")) write_file_atomic(out_dir + "/report.md", report_md(s, out));
    return out.metrics;
}

json scenario_run_snapshot(const scenario & s, const std::string & out_dir, bool overwrite, job_progress * progress) {
    snapshot_writer w(out_dir, overwrite);
    scenario_run(s, w.staging_dir(), progress);
    // report.json holds everything the manifest records (written by scenario_run).
    const json rep = json_read_file(w.staging_dir() + "/report.json", "json");
    json man;
    for (const char * k : {"scenario", "inputs", "methods", "trained", "seeds", "threads", "metrics", "timings"}) man[k] = rep[k];
    man["small"] = s.small;
    return w.commit(man);
}

} // namespace attnlab
