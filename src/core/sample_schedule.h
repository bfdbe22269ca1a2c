// When to read an instance's process tree from /proc again. Pure: the shell
// hands in the time and the figures it read; nothing here reads /proc.
//
// Reading /proc is what an idle vigil spends its CPU on (two small files a
// process), so a tree is read only as often as something needs it:
//  - under a memory_limit, every sample_interval (the limit acts on
//    kMemoryLimitSamples reads in a row, so it acts within that many
//    intervals);
//  - otherwise every interval while its figures (RSS, CPU, processes) move;
//    a read that finds them as the read before did waits kIdleSampleStride
//    intervals for the next; one that finds them moved brings it back to
//    every interval. (Reading 500 idle trees costs some 10-25 ms of CPU: at
//    once a minute that is under 0.05 % of a core.)
//  - a scrape of /metrics first reads every tree whose figures are older
//    than one interval (stale(..., Freshness::interval)), so what it shows
//    is never staler than that. A read of the API or the status page takes
//    the figures as fresh as the schedule keeps them
//    (Freshness::schedule): it reads only a tree that was never read, or
//    one read every interval whose read is late; a still tree's figures
//    did not move between its last two reads and stand until its next
//    periodic one. (A status page polls every 2 s: reading every still
//    tree for it would read 1,000 trees every 2 s, thirty times what the
//    schedule does.) Such a read updates the figures but does not count as
//    one of the limit's periodic reads.
//  - a scraper comes at a fixed interval: ScrapeRhythm expects the next
//    scrape when the last two say, and the sampling timer reads, half an
//    interval before it and in slices, the trees that would be stale then.
//    The scrape finds them fresh and answers without reading /proc (10,000
//    still trees take this machine ~200 ms to read); the reads are the
//    same in number, only off the request.
#pragma once
#include <cstdint>
#include <optional>

#include "clock.h"
#include "units.h"

namespace vigil {

// One read of a process tree.
struct TreeUsage {
  std::uint64_t rss_bytes = 0;
  std::uint64_t cpu_ticks = 0;  // utime+stime of the live members
  int processes = 0;
  bool operator==(const TreeUsage&) const = default;
};

// The wait between two periodic reads of a tree whose figures did not
// move, in sample intervals: a minute at the default of 1s.
inline constexpr int kIdleSampleStride = 60;

// How fresh a reader wants the figures (see the top of this file).
enum class Freshness {
  interval,  // /metrics: every tree read within the last interval
  schedule,  // the API, the status page: as the periodic reads keep them
};

class SampleSchedule {
 public:
  // A new process (or none): its tree is read at the next periodic tick,
  // and every interval until its figures settle.
  void restart();
  // A periodic read at `at`. `limited`: the instance has a memory_limit.
  void sampled(SteadyTime at, const TreeUsage& usage, bool limited, Duration interval);
  // An on-demand read (a scrape) at `at`: fresh figures; a tree found
  // moving is read every interval again. The next periodic read stays
  // when it was.
  void refreshed(SteadyTime at, const TreeUsage& usage, Duration interval);

  // Whether the periodic tick at `now` should read the tree. A tick up to
  // half an interval early counts: timers and the slices of a pass drift.
  bool due(SteadyTime now, Duration interval) const;
  // When the next periodic read is due (the far past when never read).
  SteadyTime next_at() const { return next_; }
  // Whether a reader wanting `freshness` should read the tree first: it
  // was never read, or its figures are older than one interval and
  // (Freshness::schedule) the schedule reads it every interval.
  bool stale(SteadyTime now, Duration interval, Freshness freshness = Freshness::interval) const;
  // Intervals between periodic reads now: 1 or kIdleSampleStride.
  int stride() const { return stride_; }

 private:
  std::optional<TreeUsage> last_;    // the figures of the last read
  std::optional<SteadyTime> read_;   // when they were read
  SteadyTime next_{};                // the next periodic read
  int stride_ = 1;
};

// The longest gap between two scrapes taken as a rhythm to read ahead of.
inline constexpr Duration kMaxScrapeGap = std::chrono::minutes(10);

class ScrapeRhythm {
 public:
  void scraped(SteadyTime at);
  // When the next scrape is expected: the last one plus the gap before
  // it; none before two scrapes, or when they were more than
  // kMaxScrapeGap apart.
  std::optional<SteadyTime> next_expected() const;
  // When to read ahead of it: half an interval before, not before `now`.
  std::optional<SteadyTime> read_ahead_at(SteadyTime now, Duration interval) const;

 private:
  std::optional<SteadyTime> last_, before_;
};

}  // namespace vigil
