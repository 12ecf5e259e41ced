#!/usr/bin/env bash
# Checks C++ formatting against the repo's .clang-format without changing any file: prints each
# file clang-format would change (with the first lines of its diff) and exits 1 if there is one.
# Usage: scripts/check_format.sh            the paths listed in scripts/format_paths.txt
#        scripts/check_format.sh --all      every C++ file of src/ tests/ bench/ fuzz/ python/
#        scripts/check_format.sh --fix [..] rewrite the files instead (same selection)
#        scripts/check_format.sh FILE...    just these files
# CI (.ci/run) runs the first form; the list names the top folders, so every C++ file is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
clang_format=${CLANG_FORMAT:-clang-format}
if ! command -v "$clang_format" >/dev/null; then
  echo "check_format: $clang_format not found (Debian: apt-get install clang-format)" >&2
  exit 2
fi

fix=0
if [[ ${1:-} == --fix ]]; then
  fix=1
  shift
fi
is_cxx() { [[ $1 =~ \.(cpp|h|hpp|cc)$ ]]; }
files=()
if [[ ${1:-} == --all ]]; then
  roots=(src tests bench fuzz python)
elif [[ $# -gt 0 ]]; then
  roots=("$@")
else
  mapfile -t roots < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' scripts/format_paths.txt | grep -v '^$')
fi
for r in "${roots[@]}"; do
  if [[ -d $r ]]; then
    while IFS= read -r f; do is_cxx "$f" && files+=("$f"); done < <(git ls-files -- "$r")
  elif [[ -f $r ]]; then
    files+=("$r")
  else
    echo "check_format: $r: no such file or directory" >&2
    exit 2
  fi
done

if [[ $fix == 1 ]]; then
  [[ ${#files[@]} -gt 0 ]] && "$clang_format" -i --style=file "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! out=$(diff -u "$f" <("$clang_format" --style=file --assume-filename="$f" <"$f")); then
    echo "$f: not formatted (scripts/check_format.sh --fix $f)"
    printf '%s\n' "$out" | sed -n '3,12p'
    bad=1
  fi
done
if [[ $bad == 0 ]]; then
  echo "check_format: ${#files[@]} file(s) formatted as .clang-format asks"
fi
exit $bad
