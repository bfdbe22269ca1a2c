#!/bin/sh
# A well-behaved service: one line a second, exits cleanly on SIGTERM.
trap 'echo "steady: SIGTERM, bye"; exit 0' TERM
echo "steady: started as instance ${VIGIL_INSTANCE} of ${VIGIL_PROGRAM}"
n=0
while :; do
  n=$((n + 1))
  echo "steady[${VIGIL_INSTANCE}]: tick $n"
  sleep 1 &
  wait $!
done
