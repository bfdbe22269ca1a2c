#!/usr/bin/env bash
# Runs every benchmark against BUILD_DIR and prints a table of figure / target.
# Figures are measurements, not pass/fail: the exit status is non-zero only
# when a run is broken (lines lost, vigil failing to start or to stop, ...).
#
#   bash bench/run.sh [BUILD_DIR]        (make bench)
# A benchmark whose binary is missing (its build failed, or the source is
# not there) is skipped and listed, not counted as broken.
# Environment: BENCH_TMPDIR (default /tmp; the benchmarks with 1,000
# instances prefer /dev/shm), BENCH_KEEP=1 keeps the temp dirs,
# BENCH_SOAK_SECONDS (default 60) shortens the heartbeat soak,
# BENCH_PAGE_SECONDS (default 60) page_bench's idle and polling windows;
# sticky_bench.py reads STICKY_BENCH_* (see its header).
set -uo pipefail

BUILD=${1:-build}
BIN=$BUILD/bench
BENCHES=(restart_bench log_bench instances_bench scrape_bench sampling_bench heartbeat_bench probe_bench api_bench page_bench listen_bench upgrade_bench)
# Benchmarks that are scripts driving outside tools (wrk, nginx), run as
# `python3 bench/NAME BUILD_DIR`.
SCRIPTS=(sticky_bench.py)
here=$(cd "$(dirname "$0")" && pwd)

# `make bench` builds everything first; build just the benchmarks otherwise.
# A failed build is reported; what did build still runs.
for b in "${BENCHES[@]}"; do
  if [[ ! -x $BIN/$b ]]; then
    cmake --build "$BUILD" --target benchmarks -j "$(nproc)" ||
      echo "run.sh: building the benchmarks failed; running those that exist" >&2
    break
  fi
done

results=$(mktemp /tmp/vigil-bench-results.XXXXXX)
trap 'rm -f "$results"' EXIT
export BENCH_RESULTS=$results

echo "vigil benchmarks: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
start=$SECONDS
broken=()
skipped=()
for b in "${BENCHES[@]}"; do
  echo
  echo "== $b"
  if [[ ! -x $BIN/$b ]]; then
    echo "  skipped: no $BIN/$b"
    skipped+=("$b")
    continue
  fi
  t0=$SECONDS
  if ! "$BIN/$b"; then
    broken+=("$b")
  fi
  echo "  ($((SECONDS - t0)) s)"
  # 10,000 instances (or as many as the hard fd limit holds), the real
  # binary only.
  if [[ $b == instances_bench ]]; then
    echo
    echo "== instances_bench --scale"
    t0=$SECONDS
    "$BIN/$b" --scale 1 || broken+=("$b --scale")
    echo "  ($((SECONDS - t0)) s)"
    # The same with log = "off" (2 open files an instance): nearly 10,000
    # fit a hard limit of 20,000, measured rather than carried.
    echo
    echo "== instances_bench --scale --log-off"
    t0=$SECONDS
    "$BIN/$b" --scale 1 --log-off 1 || broken+=("$b --scale --log-off")
    echo "  ($((SECONDS - t0)) s)"
  fi
done

for s in "${SCRIPTS[@]}"; do
  echo
  echo "== ${s%.py}"
  t0=$SECONDS
  if ! python3 "$here/$s" "$BUILD"; then
    broken+=("${s%.py}")
  fi
  echo "  ($((SECONDS - t0)) s)"
done

echo
echo "== summary ($((SECONDS - start)) s)"
awk -F'\t' '{ printf "  %-46s %-12s %-13s %s\n", $1, $2, ($3 == "-" ? "" : $3), $4 }' \
  <(printf 'figure\tvalue\ttarget\t\n'; cat "$results")
if ((${#skipped[@]})); then
  echo "SKIPPED (not built): ${skipped[*]}" >&2
fi
if ((${#broken[@]})); then
  echo "BROKEN: ${broken[*]}" >&2
  exit 1
fi
