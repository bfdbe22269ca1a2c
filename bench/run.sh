#!/usr/bin/env bash
# Runs every benchmark against BUILD_DIR and prints a table of figure / target.
# Figures are measurements, not pass/fail: the exit status is non-zero only
# when a run is broken (lines lost, vigil failing to start or to stop, ...).
#
#   bash bench/run.sh [BUILD_DIR]        (make bench)
# Environment: BENCH_TMPDIR (default /tmp; the instances benchmark prefers
# /dev/shm), BENCH_KEEP=1 keeps the temp dirs.
set -uo pipefail

BUILD=${1:-build}
BIN=$BUILD/bench
BENCHES=(restart_bench log_bench instances_bench)

# `make bench` builds everything first; build just the benchmarks otherwise.
for b in "${BENCHES[@]}"; do
  if [[ ! -x $BIN/$b ]]; then
    cmake --build "$BUILD" --target benchmarks -j "$(nproc)" || exit 1
    break
  fi
done

results=$(mktemp /tmp/vigil-bench-results.XXXXXX)
trap 'rm -f "$results"' EXIT
export BENCH_RESULTS=$results

echo "vigil benchmarks: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
start=$SECONDS
broken=()
for b in "${BENCHES[@]}"; do
  echo
  echo "== $b"
  if ! "$BIN/$b"; then
    broken+=("$b")
  fi
done

echo
echo "== summary ($((SECONDS - start)) s)"
awk -F'\t' '{ printf "  %-46s %-12s %-13s %s\n", $1, $2, ($3 == "-" ? "" : $3), $4 }' \
  <(printf 'figure\tvalue\ttarget\t\n'; cat "$results")
if ((${#broken[@]})); then
  echo "BROKEN: ${broken[*]}" >&2
  exit 1
fi
