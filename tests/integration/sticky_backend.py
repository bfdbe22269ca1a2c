#!/usr/bin/env python3
"""A backend for the sticky proxy tests, one per instance: listens on
127.0.0.1:$PORT and serves each connection in a thread, by its first line:
  GET ...        an HTTP/1.1 answer "INDEX PID\n", then close (for hammer.py)
  WHO            "INDEX PID\n"; again for every further WHO line on the connection
  SINK N PAUSE   reads N bytes, pausing PAUSE seconds after every 8 MiB (a
                 slow reader), then answers "N CRC32\n"
On SIGTERM it stops taking new connections once those already queued in
its backlog are taken (the proxy may have connected them just before the
stop), finishes every connection, and exits 0: a graceful server."""
import os
import signal
import socket
import sys
import threading
import time
import zlib

index = os.environ.get("VIGIL_INSTANCE", "?")
me = f"{index} {os.getpid()}\n".encode()
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(os.environ["PORT"])))
listener.listen(1024)
stopping = threading.Event()
threads = []


def read_line(conn, buf):
    while b"\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    return line.rstrip(b"\r").decode(errors="replace"), rest


def serve(conn):
    try:
        buf = b""
        line, buf = read_line(conn, buf)
        if line is None:
            return
        if line.startswith("GET "):
            while b"\r\n\r\n" not in buf and b"\n\n" not in buf:
                more = conn.recv(65536)
                if not more:
                    break
                buf += more
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(me) + me)
        elif line == "WHO":
            while line == "WHO":
                conn.sendall(me)
                line, buf = read_line(conn, buf)
        elif line.startswith("SINK "):
            _, n, pause = line.split()
            want, got, crc, mark = int(n), 0, 0, 8 << 20
            if buf:
                got, crc = len(buf), zlib.crc32(buf)
            while got < want:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                got += len(chunk)
                crc = zlib.crc32(chunk, crc)
                if got >= mark:
                    mark += 8 << 20
                    time.sleep(float(pause))  # the slow reader: load, not synchronisation
            conn.sendall(f"{got} {crc}\n".encode())
    except OSError:
        pass
    finally:
        conn.close()


def on_term(*_):
    stopping.set()


signal.signal(signal.SIGTERM, on_term)
listener.settimeout(0.05)
print(f"instance {index} listening on {os.environ['PORT']}", flush=True)
while True:
    if stopping.is_set():
        listener.setblocking(False)  # take what is queued, then no more
    try:
        conn, _ = listener.accept()
    except (socket.timeout, BlockingIOError):
        if stopping.is_set():
            break
        continue
    conn.setblocking(True)
    t = threading.Thread(target=serve, args=(conn,), daemon=True)
    t.start()
    threads.append(t)
    threads = [t for t in threads if t.is_alive()]
listener.close()
for t in threads:
    t.join()
sys.exit(0)
