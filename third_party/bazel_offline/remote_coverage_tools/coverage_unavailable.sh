#!/bin/sh
# Offline stand-in: `bazel coverage` needs the real @remote_coverage_tools.
echo "bazel coverage is unavailable offline: drop the @remote_coverage_tools stand-in" \
  "from WORKSPACE (see third_party/bazel_offline/README.md)" >&2
exit 1
