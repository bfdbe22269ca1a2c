#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang and runs each on its seed corpus
# (fuzz/corpus/NAME), splitting SECONDS (default 20) between them: the
# notify protocol parser, the HTTP probe judge, the sticky proxy's
# X-Forwarded-For peek, the config (whole files), duration and size strings,
# and the command line. Skips (exit 0) when clang
# is not installed; exits non-zero when a fuzzer finds a crash (the input is
# left in the artifacts dir).
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

# name, seed corpus dir, max input length. The probe judge needs inputs past
# its 16 KiB header bound; its 64 KiB body bound is reached by padding. The
# peek's default bound is 8 KiB (plus 2 bytes of limit). The config seeds
# hold a deep file (past the nesting limit) and padded ones that reach the
# 4 MiB size limit (see config_fuzz.cpp); durations and sizes are short.
fuzzers=(
  "notify_protocol_fuzz notify 8192"
  "probe_http_fuzz probe_http 20000"
  "forwarded_for_fuzz forwarded_for 9000"
  "config_fuzz config 70000"
  "units_fuzz units 64"
  "cli_fuzz cli 512"
  # A request through the HTTP API's real handler (first byte: method,
  # trust, token, path prefix; then path, query, headers, body by lines).
  "http_api_fuzz http_api 4096"
  # What the CLI parses from the control socket.
  "control_fuzz control 8192"
)
each=$(( seconds / ${#fuzzers[@]} ))
(( each >= 1 )) || each=1

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DVIGIL_FUZZ=ON -DVIGIL_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=()
for f in "${fuzzers[@]}"; do targets+=(--target "${f%% *}"); done
cmake --build "$build" "${targets[@]}" -j "$(nproc)"

artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
for f in "${fuzzers[@]}"; do
  read -r name corpus max_len <<<"$f"
  # New inputs go to a scratch corpus in the build dir, so the shipped seeds
  # stay small and reviewed; the seeds are read as a second corpus dir.
  work="$build/fuzz-corpus/$corpus"
  mkdir -p "$work"
  echo "fuzz: $name for ${each}s (-max_len=$max_len)"
  "$build/fuzz/$name" \
    -max_total_time="$each" -max_len="$max_len" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" \
    "$work" "$root/fuzz/corpus/$corpus"
  echo "fuzz: $name: no crash in ${each}s"
done
