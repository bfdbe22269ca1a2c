/* example.c — a worker loop using vigil_heartbeat.h: READY once, a beat per
 * loop turn at the interval vigil asks for, STATUS and MEMORY now and then,
 * STOPPING on SIGTERM. Runs unchanged without vigil (the calls are no-ops).
 *
 *   cc -std=c99 -Wall -Wextra -O2 -o example example.c
 *   ./example [BEATS]     # stop after BEATS beats; default: run until SIGTERM
 */
#include "vigil_heartbeat.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_term(int sig) {
  (void)sig;
  stop_requested = 1;
}

int main(int argc, char **argv) {
  unsigned long long interval_usec, beats = 0, max_beats = 0;
  struct sigaction sa;
  struct timespec pause_for;
  char text[64];

  if (argc > 1) max_beats = strtoull(argv[1], NULL, 10);
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  vigil_hb_init();
  interval_usec = vigil_hb_interval_usec();
  if (interval_usec == 0) interval_usec = 1000000; /* no hang detection: beat each second anyway */
  pause_for.tv_sec = (time_t)(interval_usec / 1000000);
  pause_for.tv_nsec = (long)(interval_usec % 1000000) * 1000;

  /* ... open files, bind sockets, load data: then say we are ready. */
  vigil_hb_ready();
  vigil_hb_status("example: started");
  vigil_hb_report_memory();

  while (!stop_requested && (max_beats == 0 || beats < max_beats)) {
    /* One unit of real work would go here; the beat proves the loop turns. */
    vigil_hb_beat();
    ++beats;
    if (beats % 10 == 0) {
      snprintf(text, sizeof(text), "example: %llu beats", beats);
      vigil_hb_status(text);
      vigil_hb_report_memory();
    }
    nanosleep(&pause_for, NULL); /* EINTR on SIGTERM: the loop checks the flag */
  }

  vigil_hb_stopping();
  printf("example: stopping after %llu beats\n", beats);
  return 0;
}
