/* The child the benchmarks run under vigil. Linked statically when the
 * toolchain allows it, so that what a restart costs is vigil's work plus
 * fork/exec, not the dynamic loader of the child.
 *
 *   bench_child restart FILE
 *       Appends one record "R <start_ns> <exit_ns> <pid>\n" to FILE (one
 *       O_APPEND write) and exits 0 at once. start_ns is CLOCK_MONOTONIC read
 *       first thing in main, exit_ns just before the write.
 *   bench_child flood LINES FILE
 *       Writes LINES lines of exactly 100 bytes to stdout through a 1 MiB
 *       stdio buffer: "%010u " + 88 bytes of filler + "\n". Then writes
 *       "F <start_ns> <end_ns>\n" to FILE (CLOCK_MONOTONIC at start and after
 *       the last fflush) and exits 0.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int append_record(const char* path, const char* text, size_t len) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, len);
  close(fd);
  return n == (ssize_t)len ? 0 : -1;
}

static int run_restart(const char* path, long long start) {
  char rec[96];
  long long end = now_ns();
  int len = snprintf(rec, sizeof rec, "R %lld %lld %d\n", start, end, (int)getpid());
  return append_record(path, rec, (size_t)len) == 0 ? 0 : 1;
}

enum { kLineBytes = 100, kSeqDigits = 10 };

static int run_flood(unsigned long lines, const char* path, long long start) {
  static char buffer[1 << 20];
  setvbuf(stdout, buffer, _IOFBF, sizeof buffer);
  char line[kLineBytes];
  memset(line, 'x', sizeof line);
  for (int i = kSeqDigits + 1; i < kLineBytes - 1; ++i) line[i] = (char)('a' + i % 26);
  line[kSeqDigits] = ' ';
  line[kLineBytes - 1] = '\n';
  for (unsigned long seq = 0; seq < lines; ++seq) {
    unsigned long v = seq;
    for (int d = kSeqDigits - 1; d >= 0; --d) {
      line[d] = (char)('0' + v % 10);
      v /= 10;
    }
    if (fwrite(line, 1, sizeof line, stdout) != sizeof line) return 1;
  }
  if (fflush(stdout) != 0) return 1;
  long long end = now_ns();
  char rec[96];
  int len = snprintf(rec, sizeof rec, "F %lld %lld\n", start, end);
  return append_record(path, rec, (size_t)len) == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  long long start = now_ns();
  if (argc == 3 && strcmp(argv[1], "restart") == 0) return run_restart(argv[2], start);
  if (argc == 4 && strcmp(argv[1], "flood") == 0)
    return run_flood(strtoul(argv[2], NULL, 10), argv[3], start);
  fprintf(stderr, "usage: bench_child restart FILE | flood LINES FILE\n");
  return 2;
}
