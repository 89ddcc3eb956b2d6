// attnlab-cli snapshot info|verify: show a snapshot's manifest (after checking
// every file against it), and re-run its scenario to confirm the recorded
// metrics reproduce bit for bit (docs/snapshots.md).
#include <cstdio>
#include <iostream>
#include <memory>
#include <omp.h>

#include "cli_common.h"
#include "commands.h"
#include "base/error.h"
#include "base/job.h"
#include "lab/scenario.h"
#include "lab/snapshot.h"
#include "../view_ids.h"

namespace attnlab_cli {

namespace {

struct snapshot_args : common_opts {
    std::string dir, keep;
};

// Leaf values (numbers, strings, bools, null) under j: what verify compares.
size_t count_leaves(const nlohmann::json & j) {
    if (!j.is_structured()) return 1;
    size_t n = 0;
    for (const auto & v : j) n += count_leaves(v);
    return n;
}

std::string str_or(const nlohmann::json & j, const char * key, const std::string & dflt = "-") {
    return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : dflt;
}

std::string program_line(const nlohmann::json & p) {
    return str_or(p, "name") + " " + str_or(p, "version") + " (commit " + str_or(p, "git_commit") + ", " +
           str_or(p, "build_type") + ")";
}

void print_info(const std::string & dir, const nlohmann::json & m) {
    uint64_t bytes = 0;
    for (const auto & f : m["files"]) bytes += f["bytes"].get<uint64_t>();
    std::printf("snapshot    %s\n", dir.c_str());
    std::printf("schema      %s\n", m["schema"].get<std::string>().c_str());
    std::printf("program     %s\n", program_line(m["program"]).c_str());
    std::printf("created     %s\n", m["created_utc"].get<std::string>().c_str());
    if (m.contains("host")) std::printf("cpu         %s\n", str_or(m["host"], "cpu").c_str());
    if (m.contains("scenario")) {
        const nlohmann::json & s = m["scenario"];
        std::printf("scenario    %s%s%s\n", str_or(s, "kind").c_str(), s.contains("title") ? "  " : "",
                    str_or(s, "title", "").c_str());
    }
    if (m.contains("inputs") && m["inputs"].is_object()) {
        for (auto it = m["inputs"].begin(); it != m["inputs"].end(); ++it) {
            const nlohmann::json & in = it.value();
            std::string line = str_or(in, "path", str_or(in, "spec", str_or(in, "file", str_or(in, "name", in.dump()))));
            if (in.contains("id")) line += "  (" + str_or(in, "id") + ")";
            if (in.contains("sha256")) line += "  sha256 " + str_or(in, "sha256");
            std::printf("%-12s%s\n", (it.key() + " ").c_str(), line.c_str());
        }
    }
    if (m.contains("methods") && m["methods"].is_array()) {
        std::string line;
        for (const auto & s : m["methods"]) line += (line.empty() ? "" : ", ") + (s.is_string() ? s.get<std::string>() : s.dump());
        std::printf("methods     %s\n", line.c_str());
    }
    if (m.contains("trained") && m["trained"].is_array()) {
        for (const auto & t : m["trained"]) {
            std::printf("trained     %s  %s  sha256 %s\n", str_or(t, "role").c_str(), str_or(t, "file").c_str(),
                        str_or(t, "sha256").c_str());
        }
    }
    if (m.contains("seeds")) std::printf("seeds       %s\n", m["seeds"].dump().c_str());
    if (m.contains("threads")) std::printf("threads     %s\n", m["threads"].dump().c_str());
    std::printf("metrics     %zu values\n", count_leaves(m["metrics"]));
    std::printf("files       %zu, %llu bytes; every size and sha256 matches the manifest\n", m["files"].size(),
                (unsigned long long)bytes);
}

// Re-runs the scenario a manifest recorded into out_dir through the same path
// as `attnlab-cli run` (scenario_run_snapshot), with its "small" flag and, for
// a shard of a sweep, the same shard.
attnlab::snapshot_runner scenario_snapshot_runner(const std::string & dir, const nlohmann::json & manifest) {
    return [dir, manifest](const nlohmann::json & cfg, const std::string & out, attnlab::job_progress * progress) {
        attnlab::scenario s = attnlab::scenario_from_json(cfg, dir + "/manifest.json", attnlab_app::view_ids());
        s.small = manifest.value("small", false);
        const nlohmann::json & metrics = manifest["metrics"];
        if (metrics.contains("shard") && metrics["shard"].is_object()) {
            s.shard_index = metrics["shard"].value("index", 0);
            s.shard_count = metrics["shard"].value("count", 1);
        }
        attnlab::scenario_run_snapshot(s, out, false, progress);
    };
}

void print_verify(const attnlab::snapshot_verify_result & r, size_t compared) {
    std::printf("recorded by  %s\nre-run by    %s\n", program_line(r.recorded["program"]).c_str(),
                program_line(r.rerun["program"]).c_str());
    const std::string cpu_rec = str_or(r.recorded.value("host", nlohmann::json()), "cpu"),
                      cpu_now = str_or(r.rerun.value("host", nlohmann::json()), "cpu");
    if (cpu_rec != cpu_now) std::printf("note: recorded on CPU %s, re-run on %s\n", cpu_rec.c_str(), cpu_now.c_str());
    for (const auto & d : r.diffs) {
        std::printf("MISMATCH %s: recorded %s, measured %s\n", d.path.c_str(), d.recorded.c_str(), d.measured.c_str());
    }
    for (const auto & f : r.files_differ) std::printf("note: file %s has other bytes in the re-run\n", f.c_str());
    if (!r.rerun_dir.empty()) std::printf("re-run kept in %s\n", r.rerun_dir.c_str());
    if (r.ok()) std::printf("ok: all %zu metric values reproduce exactly\n", compared);
    else std::printf("FAILED: %zu mismatches (%zu metric values compared)\n", r.diffs.size(), compared);
}

int run_verify(const snapshot_args & a) {
    using namespace attnlab;
    // Refuse a corrupt snapshot before any work.
    const nlohmann::json m = snapshot_read(a.dir);
    if (!a.json) {
        std::fprintf(stderr, "re-running %s (%s, %s threads)\n", a.dir.c_str(),
                     m.contains("scenario") ? str_or(m["scenario"], "kind").c_str() : "no scenario",
                     m.contains("threads") ? m["threads"].dump().c_str() : "?");
    }
    const snapshot_verify_result r = run_job(a.quiet || a.json, [&](job_progress * job) {
        return snapshot_verify(a.dir, scenario_snapshot_runner(a.dir, m), a.keep, job);
    });
    const size_t compared = count_leaves(r.recorded["metrics"]);
    if (!a.json) {
        for (const std::string & n : r.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
        print_verify(r, compared);
        return r.ok() ? 0 : 1;
    }
    nlohmann::json diffs = nlohmann::json::array();
    for (const auto & d : r.diffs) diffs.push_back({{"path", d.path}, {"recorded", d.recorded}, {"measured", d.measured}});
    print_json({{"ok", r.ok()},
                {"dir", a.dir},
                {"threads", r.recorded["threads"]},
                {"threads_used", r.threads},
                {"notes", r.notes},
                {"metrics_compared", compared},
                {"diffs", diffs},
                {"files_differ", r.files_differ},
                {"kept", r.rerun_dir.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.rerun_dir)},
                {"recorded_program", r.recorded["program"]},
                {"rerun_program", r.rerun["program"]},
                {"recorded_host", r.recorded.value("host", nlohmann::json())},
                {"rerun_host", r.rerun.value("host", nlohmann::json())}});
    return r.ok() ? 0 : 1;
}

} // namespace

void add_cmd_snapshot(CLI::App & app, std::vector<command> & cmds) {
    CLI::App * sub = app.add_subcommand("snapshot", "Inspect and verify snapshots (directories written by `attnlab-cli run`)");
    sub->require_subcommand(1);

    auto ai = std::make_shared<snapshot_args>();
    CLI::App * info = sub->add_subcommand("info", "Check a snapshot's files against its manifest and summarise it");
    info->add_option("dir", ai->dir, "snapshot directory")->required();
    ai->add_json(info, "JSON output: {\"dir\", \"manifest\"}");
    command_add(cmds, info, *ai, [ai]() {
        const nlohmann::json m = attnlab::snapshot_read(ai->dir);
        if (ai->json) print_json({{"dir", ai->dir}, {"manifest", m}});
        else print_info(ai->dir, m);
        return 0;
    });

    auto av = std::make_shared<snapshot_args>();
    CLI::App * verify = sub->add_subcommand("verify", "Re-run a snapshot's scenario on the CPU with its recorded thread count "
                                                      "and check that every metric reproduces exactly (exit 1 if not)");
    verify->add_option("dir", av->dir, "snapshot directory")->required();
    verify->add_option("--keep", av->keep, "write the re-run here (a new directory) and keep it");
    av->add_output_flags(verify);
    command_add(cmds, verify, *av, [av]() { return run_verify(*av); });
}

} // namespace attnlab_cli
