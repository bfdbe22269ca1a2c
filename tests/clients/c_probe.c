/* c_probe.c — edge cases of clients/c/vigil_heartbeat.h for test_clients.py.
 *   c_probe status    one STATUS with a newline and 2000+ bytes of UTF-8
 *   c_probe no-exit   (built with -DVIGIL_HB_NO_EXIT) beat until the reader
 *                     is gone; check EPIPE comes back, no SIGPIPE is left
 *                     pending with SIGPIPE at its default disposition, and
 *                     the client went quiet; exit 0 if all holds.
 */
#include "vigil_heartbeat.h"

static int probe_status(void) {
  char text[4000];
  size_t n = 0;
  memcpy(text, "line1\nline2 ", 12);
  n = 12;
  while (n + 2 < sizeof(text) - 1) {
    text[n++] = '\xc3'; /* U+00E9 as UTF-8: a cut must not split it */
    text[n++] = '\xa9';
  }
  text[n] = '\0';
  return vigil_hb_status(text) == 1 ? 0 : 1;
}

static int probe_no_exit(void) {
#ifdef VIGIL_HB_NO_EXIT
  struct timespec pause_for;
  sigset_t pending;
  struct sigaction sa;
  int i, rc;
  pause_for.tv_sec = 0;
  pause_for.tv_nsec = 20 * 1000 * 1000;
  if (vigil_hb_init() != VIGIL_HB_FD) return 10;
  for (i = 0; i < 1000; ++i) { /* up to 20 s for the test to close its end */
    rc = vigil_hb_beat();
    if (rc < 0) break;
    nanosleep(&pause_for, NULL);
  }
  if (i == 1000) return 11;
  if (errno != EPIPE) return 12;
  sigpending(&pending);
  if (sigismember(&pending, SIGPIPE)) return 13;
  sigaction(SIGPIPE, NULL, &sa);
  if (sa.sa_handler != SIG_DFL) return 14;
  if (vigil_hb_beat() != 0) return 15; /* transport closed: a quiet no-op now */
  printf("survived EPIPE\n");
  return 0;
#else
  return 20;
#endif
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "status") == 0) return probe_status();
  if (argc == 2 && strcmp(argv[1], "no-exit") == 0) return probe_no_exit();
  fprintf(stderr, "usage: c_probe status|no-exit\n");
  return 2;
}
