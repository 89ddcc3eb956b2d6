#include "base/version.h"

#ifndef ATTNLAB_GIT_COMMIT
#define ATTNLAB_GIT_COMMIT "unknown"
#endif

namespace attnlab {

const char * version_string() { return ATTNLAB_VERSION; }
const char * version_git_commit() { return ATTNLAB_GIT_COMMIT; }

} // namespace attnlab
