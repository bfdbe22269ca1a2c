/* A program written for systemd's watchdog, unchanged: libsystemd's
 * sd_watchdog_enabled() and sd_notify(), nothing of vigil's. Under vigil it
 * must find the watchdog enabled (WATCHDOG_USEC, and WATCHDOG_PID equal to
 * its own pid) and reach vigil through NOTIFY_SOCKET.
 *
 *   sd_notify_child [RUN_MS]
 *
 * Prints "watchdog usec=N", sends READY=1 and then WATCHDOG=1 every N/2
 * microseconds, as systemd recommends, for RUN_MS ms (default: forever);
 * then STOPPING=1 and exit 0. Exits 2 when the watchdog is not enabled, 3
 * when sd_notify fails or finds no NOTIFY_SOCKET. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void notify_or_die(const char *message) {
  int r = sd_notify(0, message);
  if (r <= 0) {
    fprintf(stderr, "sd_notify(\"%s\") = %d (%s)\n", message, r,
            r < 0 ? strerror(-r) : "no NOTIFY_SOCKET");
    exit(3);
  }
}

int main(int argc, char **argv) {
  long long run_ms = argc > 1 ? atoll(argv[1]) : -1;
  long long started = now_ms();
  uint64_t usec = 0;
  int r = sd_watchdog_enabled(0, &usec);
  if (r <= 0) {
    fprintf(stderr, "sd_watchdog_enabled = %d: watchdog not enabled\n", r);
    return 2;
  }
  printf("watchdog usec=%llu\n", (unsigned long long)usec);
  fflush(stdout);

  notify_or_die("READY=1\nSTATUS=beating");
  while (run_ms < 0 || now_ms() - started < run_ms) {
    struct timespec half = {(time_t)(usec / 2 / 1000000), (long)(usec / 2 % 1000000) * 1000};
    notify_or_die("WATCHDOG=1");
    nanosleep(&half, NULL);
  }
  notify_or_die("STOPPING=1");
  printf("done\n");
  return 0;
}
