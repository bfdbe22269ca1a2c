#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang and runs the notify protocol
# fuzzer for N seconds (default 20) on the seed corpus shipped in
# fuzz/corpus/notify. Skips (exit 0) when clang is not installed; exits
# non-zero when the fuzzer finds a crash (the input is left in the artifacts dir).
#   usage: fuzz/run.sh [SECONDS]      env: FUZZ_BUILD (default build-fuzz)
set -euo pipefail

seconds="${1:-20}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FUZZ_BUILD:-$root/build-fuzz}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac

if ! command -v clang >/dev/null 2>&1 || ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: clang/clang++ not found, skipping (install clang to fuzz the parsers)"
  exit 0
fi

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DVIGIL_FUZZ=ON -DVIGIL_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target notify_protocol_fuzz -j "$(nproc)"

# New inputs go to a scratch corpus in the build dir, so the shipped seeds stay
# small and reviewed; the seeds are read as a second corpus dir.
work="$build/fuzz-corpus/notify"
artifacts="$build/fuzz-artifacts"
mkdir -p "$work" "$artifacts"

echo "fuzz: notify_protocol_fuzz for ${seconds}s (-max_len=8192)"
"$build/fuzz/notify_protocol_fuzz" \
  -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" \
  "$work" "$root/fuzz/corpus/notify"
echo "fuzz: notify_protocol_fuzz: no crash in ${seconds}s"
