#!/usr/bin/env bash
# Bazel part of `make test`: buildifier on the Bazel files, then one `bazel test` that builds
# //... and runs the fast tests of every test file (`-m "not slow"`, each file's py_test in its
# own process, two at a time), offline, with the virtualenv's Python. The test files whose tests
# are all slow (py_test tagged `slow`) are skipped here; `make test` runs `pytest -m slow` next.
#
# Without Bazel: as root with apt (CI runs as root) it installs Debian's bazel-bootstrap
# (Bazel 4.2.3); otherwise it fails under CI=true, and elsewhere says so loudly and runs the fast
# tests with pytest instead, so `make test` still runs every test once.
# Same for buildifier (npm @bazel/buildifier, which ships its binaries: no download from GitHub).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILDIFIER_VERSION=8.2.1
BUILDIFIER_DIR=.cache/buildifier
BUILDIFIER="$BUILDIFIER_DIR/node_modules/.bin/buildifier"
BAZEL_TARGETS=${BAZEL_TARGETS:-//...}
PY=${PY:-.venv/bin/python}
start=$(date +%s)

skip_or_fail() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "ERROR: $1" >&2
    exit 1
  fi
  printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
  printf '!!! SKIPPED: %s\n' "$1" >&2
  printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
  return 1
}

# --- buildifier --------------------------------------------------------------------------------
if [[ ! -x "$BUILDIFIER" ]] && command -v npm >/dev/null; then
  npm install --prefix "$BUILDIFIER_DIR" --no-save --no-audit --no-fund --loglevel=error \
    "@bazel/buildifier@$BUILDIFIER_VERSION" >/dev/null
fi
if [[ -x "$BUILDIFIER" ]]; then
  # Our Bazel files: formatted and lint-clean. The offline stand-ins forward to native rules on
  # purpose (which buildifier's lint flags), so they are only format-checked.
  mapfile -t ours < <(ls WORKSPACE BUILD; find tools -name BUILD -o -name '*.bzl')
  mapfile -t standins < <(find third_party/bazel_offline -name BUILD -o -name WORKSPACE -o -name '*.bzl')
  "$BUILDIFIER" -mode=check -lint=warn "${ours[@]}"
  "$BUILDIFIER" -mode=check "${standins[@]}"
  echo "buildifier $BUILDIFIER_VERSION: ${#ours[@]} + ${#standins[@]} Bazel files clean"
else
  skip_or_fail "buildifier: npm is not installed (apt-get install npm)" || true
fi

# --- bazel -------------------------------------------------------------------------------------
if ! command -v bazel >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "Installing Debian's bazel-bootstrap (Bazel 4.2.3) ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bazel-bootstrap >/dev/null
  else
    if ! skip_or_fail "bazel: not installed (as root: apt-get install bazel-bootstrap)"; then
      echo "Running the fast tests with pytest instead." >&2
      exec "$PY" -m pytest -q -ra -m "not slow"
    fi
  fi
fi

test_flags=(--test_tag_filters=-slow --test_arg=-m --test_arg="not slow")
if [[ "${CI:-}" == "true" ]]; then
  # CI runs the tests, even when a shared disk cache (.bazelrc) holds a passing result.
  test_flags+=(--nocache_test_results)
fi
status=0
bazel test "${test_flags[@]}" "$BAZEL_TARGETS" || status=$?
if [[ "${CI:-}" == "true" ]]; then
  bazel shutdown  # Frees the JVM's memory for the rest of the CI run.
fi
[[ $status -eq 0 ]] || exit $status
echo "Bazel check (buildifier, build //..., fast tests) wall time: $(( $(date +%s) - start )) s"
