#!/usr/bin/env bash
# Writes the scan benchmark's probe: the first N TinyStories validation paragraphs, each cut at a
# word boundary to at most CHARS characters, as a JSONL passage task (docs/evaluation.md).
# About 88 characters is ~64 tokens with the vocabulary `reprise synth` gives its models.
# Usage: bench/scan/make_probe.sh OUT.jsonl [N=32] [CHARS=88]
set -euo pipefail
out=${1:?usage: make_probe.sh OUT.jsonl [N] [CHARS]}
# A relative OUT is relative to the caller's folder, not to the repository root we move to.
case $out in /*) ;; *) out="$PWD/$out" ;; esac
cd "$(dirname "$0")/../.."
n=${2:-32}
chars=${3:-88}
awk -v n="$n" -v chars="$chars" '
  NF == 0 { next }
  {
    text = $0
    if (length(text) > chars) {
      text = substr(text, 1, chars)
      sub(/ [^ ]*$/, "", text)  # back to the last whole word
    }
    gsub(/\\/, "\\\\", text)
    gsub(/"/, "\\\"", text)
    gsub(/\t/, " ", text)
    printf "{\"text\": \"%s\"}\n", text
    if (++k == n) exit
  }' data/tinystories/tinystories_val.txt >"$out"
echo "wrote $(wc -l <"$out") items to $out" >&2
