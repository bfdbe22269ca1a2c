#!/usr/bin/env python3
"""Demo: an HTTP server that takes its listening socket from vigil (systemd
socket activation: `listen = [...]` on the program), so every instance
shares one port and a restart refuses no connection. READY once it serves,
beats from a thread, STOPPING on SIGTERM, then it finishes the request at
hand and exits. Runs as-is without vigil or systemd, binding PORT itself.

    PORT=8080 python3 config/demo/python_server.py   (PORT unset or 0: any free port)
    GET /        -> a greeting naming the process that answered
    GET /health  -> "ok"
"""
import http.server
import os
import signal
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
import vigil_heartbeat as hb  # noqa: E402

SD_LISTEN_FDS_START = 3


def held_socket():
    """The socket vigil (or systemd) passed at fd 3, or None. LISTEN_PID
    guards against variables inherited from a parent they were meant for."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0")) < 1:
        return None
    return socket.socket(fileno=SD_LISTEN_FDS_START)  # family and type read from the fd


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n" if self.path == "/health" else \
            ("hello from python_server pid %d\n" % os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # one line per request is too chatty for the demo
        pass


def main():
    sock = held_socket()
    if sock is not None:
        server = http.server.HTTPServer(("", 0), Handler, bind_and_activate=False)
        server.socket = sock
        where = "fd 3 (%s)" % os.environ.get("LISTEN_FDNAMES", "?")
    else:
        server = http.server.HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "0"))), Handler)
        where = "http://127.0.0.1:%d" % server.server_address[1]
    name = "python_server[%s]" % os.environ.get("VIGIL_INSTANCE", "0")

    def on_term(signum, frame):
        # shutdown() waits for serve_forever, which runs in this thread:
        # from another one. The request at hand is finished first.
        hb.stop()  # the beat thread: no WATCHDOG=1 after STOPPING=1
        hb.stopping()
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("%s: listening on %s (heartbeat: %s)" % (name, where, hb.transport()), flush=True)
    hb.ready()
    hb.start()
    server.serve_forever()
    print("%s: stopped" % name, flush=True)


if __name__ == "__main__":
    main()
