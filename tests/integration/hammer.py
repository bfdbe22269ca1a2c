#!/usr/bin/env python3
"""HTTP GETs against 127.0.0.1:PORT, one new connection each, as fast as it
can, until the file STOP exists; then prints one line of counts:
  ok=N refused=N failed=N
refused: the connection was refused (nothing accepting, no backlog);
failed: anything else that is not a 200 (reset, timeout, an error status).
Each failure's reason is printed on stderr. Used by the zero-downtime tests
to hammer a program while vigil restarts it."""
import http.client
import os
import sys

port = int(sys.argv[1])
stop = sys.argv[2]
ok = refused = failed = 0
while not os.path.exists(stop):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        if resp.status == 200:
            ok += 1
        else:
            failed += 1
            print(f"status {resp.status}", file=sys.stderr)
    except ConnectionRefusedError as e:
        refused += 1
        print(f"refused: {e}", file=sys.stderr)
    except Exception as e:  # reset, timeout, a half-written response
        failed += 1
        print(f"failed: {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        conn.close()
print(f"ok={ok} refused={refused} failed={failed}", flush=True)
