#!/bin/sh
# A service with a bug: it crashes a few seconds after every start, so vigil
# restarts it with backoff (see restart_delay / backoff_reset in vigil.toml).
echo "crasher: started (pid $$)"
sleep "${CRASH_AFTER:-3}"
echo "crasher: something went wrong, exiting with code 2" >&2
exit 2
