#!/usr/bin/env python3
"""Demo: a worker loop using the vigil heartbeat client. READY once set up,
a beat from the loop that does the work (beat_if_due), STATUS with the job
count and MEMORY every few seconds, STOPPING on SIGTERM. Runs as-is without
vigil.

    python3 config/demo/python_worker.py [--jobs N] [--hang-after SECONDS]

--hang-after stops the loop (and so the beats) without exiting: with a
[programs.NAME.heartbeat] section vigil sees it hung and restarts it.
"""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
import vigil_heartbeat as hb  # noqa: E402

stop_requested = False


def on_term(signum, frame):
    global stop_requested
    stop_requested = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=0, help="stop after N jobs (default: run until SIGTERM)")
    parser.add_argument("--hang-after", type=float, default=0, help="stop beating after this many seconds")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    name = "python_worker[%s]" % os.environ.get("VIGIL_INSTANCE", "0")
    print("%s: started (heartbeat: %s, beat every %.0f ms)"
          % (name, hb.transport(), hb.interval_usec() / 1000 or 1000), flush=True)
    hb.ready()
    started = last_report = time.monotonic()
    jobs = 0
    while not stop_requested and (args.jobs == 0 or jobs < args.jobs):
        time.sleep(0.05)  # one "job"
        jobs += 1
        hb.beat_if_due()  # WATCHDOG=1 at most every WATCHDOG_USEC/2 (else 1 s)
        now = time.monotonic()
        if now - last_report >= 3:
            last_report = now
            hb.status("%d jobs done" % jobs)
            hb.report_memory()
        if args.hang_after and now - started >= args.hang_after:
            print("%s: hanging now (no more heartbeats)" % name, flush=True)
            hb.status("hanging on purpose after %d jobs" % jobs)
            while not stop_requested:
                time.sleep(1)
    hb.stopping()
    print("%s: stopping after %d jobs" % (name, jobs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
