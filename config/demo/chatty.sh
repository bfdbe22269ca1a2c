#!/bin/sh
# A noisy worker: bursts of output on both streams, to watch the logs rotate.
i=0
while :; do
  i=$((i + 1))
  echo "chatty: processed batch $i ($(date +%T))"
  [ $((i % 10)) -eq 0 ] && echo "chatty: warning: batch $i was slow" >&2
  sleep 0.2 &
  wait $!
done
