#pragma once
// The program's version and the git commit it was built from. Only
// base/version.cpp sees the commit as a compile definition, so a new commit
// recompiles one file rather than every file that links core.
namespace attnlab {

const char * version_string();      // "0.1.0"
const char * version_git_commit();  // 12 hex digits, or "unknown"

} // namespace attnlab
