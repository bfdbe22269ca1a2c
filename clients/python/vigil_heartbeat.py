"""vigil_heartbeat: tell vigil (or systemd) that this Python program is ready
and alive, over the heartbeat fd (VIGIL_HEARTBEAT_FD) or NOTIFY_SOCKET, and
exit the process when vigil is gone. A silent no-op when neither is set.
Standard library only; never blocks the caller, never raises into it.

    import vigil_heartbeat as hb
    hb.ready()
    while True:
        do_work()
        hb.beat_if_due()        # WATCHDOG=1 at most every interval

Prefer beat_if_due() from the loop that does the work: a beat then proves
the work goes on. start() runs a daemon thread instead; it only proves the
interpreter is alive, unless you give it a healthy() check.

When vigil is gone (EPIPE on the heartbeat pipe, or a refused NOTIFY_SOCKET
after an earlier send succeeded) the default handler writes
"vigil is gone (EPIPE on heartbeat fd); exiting" to stderr and calls
os._exit(0): status 0 because the environment ended the program, not a
failure; os._exit because it may run in the beat thread, where sys.exit
would only end that thread. Replace it with set_on_gone(fn).
"""

import errno
import os
import re
import select
import signal
import socket
import stat
import sys
import threading
import time

__all__ = [
    "ready", "beat", "beat_if_due", "trigger", "status", "memory", "report_memory",
    "stopping", "start", "stop", "send", "interval_usec", "rss_bytes",
    "transport", "set_on_gone",
]

MAX_STATUS_BYTES = 1024  # vigil cuts STATUS text there (DESIGN.md)
DEFAULT_INTERVAL_MS = 1000

_lock = threading.RLock()
_transport = None  # None: not decided yet; then "fd", "socket" or "none"
_fd = -1
_sock = None
_addr = None
_sent_ok = False
_last_beat = None  # time.monotonic() of the last WATCHDOG=1
_thread = None
_thread_stop = None


def _after_fork_in_child():
    # The beat thread does not exist in a forked child, and the lock may have
    # been held by a thread that does not either.
    global _lock, _thread, _thread_stop
    _lock = threading.RLock()
    _thread = _thread_stop = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _default_on_gone(reason):
    try:
        os.write(2, ("vigil is gone (%s); exiting\n" % reason).encode())
    except OSError:
        pass  # stderr may be a pipe to the same dead vigil
    os._exit(0)


_on_gone = _default_on_gone


def set_on_gone(fn):
    """Replace what happens when vigil is gone; fn(reason) should end the
    process (heartbeats are off afterwards)."""
    global _on_gone
    _on_gone = fn


def _heartbeat_fd():
    # Only a pipe or socket counts: a process that merely inherited
    # VIGIL_HEARTBEAT_FD, its fd 3 being some unrelated file, must not write
    # heartbeats into it.
    value = os.environ.get("VIGIL_HEARTBEAT_FD", "")
    if not (value.isascii() and value.isdigit()):
        return -1
    fd = int(value)
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return -1
    return fd if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else -1


def _init():
    global _transport, _fd, _sock, _addr
    if _transport is not None:
        return _transport
    _transport = "none"
    _fd = _heartbeat_fd()
    if _fd >= 0:
        _transport = "fd"
        return _transport
    path = os.environ.get("NOTIFY_SOCKET", "")
    if len(path) >= 2 and path[0] in "/@":
        # "@name" is an abstract socket: sun_path starts with a NUL byte.
        _addr = "\0" + path[1:] if path[0] == "@" else path
        try:
            _sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            _transport = "socket"
        except OSError:
            _sock = None
    return _transport


def _drop_transport():
    global _transport, _sock
    _transport = "none"
    if _sock is not None:
        _sock.close()
        _sock = None


_SIGPIPE_SET = {signal.SIGPIPE}


def _write_pipe(data):
    """(sent, gone_reason)"""
    # Never block: a full pipe means vigil is not reading (stopped or stuck);
    # drop the message, the next beat will tell.
    try:
        poller = select.poll()
        poller.register(_fd, select.POLLOUT)
        if not poller.poll(0):
            return False, None
    except (OSError, ValueError):
        pass
    # Python ignores SIGPIPE by default, but the program may have restored
    # SIG_DFL (common in CLI tools): block it around the write so that EPIPE
    # comes back as an error and the reason gets printed, and consume the
    # SIGPIPE our write raised before unblocking.
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGPIPE_SET)
    try:
        was_pending = signal.SIGPIPE in signal.sigpending()
        try:
            os.write(_fd, data)  # < PIPE_BUF bytes: atomic, all or nothing
            return True, None
        except BrokenPipeError:
            if not was_pending:
                signal.sigtimedwait(_SIGPIPE_SET, 0)
            _drop_transport()
            return False, "EPIPE on heartbeat fd"
        except (BlockingIOError, InterruptedError):
            return False, None
        except OSError as err:
            _warn("cannot write to heartbeat fd %d: %s; heartbeats off" % (_fd, err.strerror))
            _drop_transport()
            return False, None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _send_socket(data):
    """(sent, gone_reason)"""
    global _sent_ok
    try:
        _sock.sendto(data, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL, _addr)
        _sent_ok = True
        return True, None
    except (ConnectionRefusedError, FileNotFoundError) as err:
        # Nobody bound any more. Before a first success it is a wrong
        # NOTIFY_SOCKET, not a monitor that died.
        if not _sent_ok:
            return False, None
        _drop_transport()
        name = "ECONNREFUSED" if isinstance(err, ConnectionRefusedError) else "ENOENT"
        return False, "%s on NOTIFY_SOCKET" % name
    except OSError:
        return False, None  # EAGAIN (queue full: dropped), EMSGSIZE, ...


def _warn(text):
    try:
        os.write(2, ("vigil-heartbeat: %s\n" % text).encode())
    except OSError:
        pass


def send(line):
    """Send raw protocol text: one "KEY=VALUE" line. True when sent."""
    with _lock:
        kind = _init()
        if kind == "fd":
            sent, gone = _write_pipe(line.rstrip("\n").encode() + b"\n")
        elif kind == "socket":
            sent, gone = _send_socket(line.rstrip("\n").encode())  # like sd_notify: no '\n'
        else:
            return False
    if gone:
        _on_gone(gone)  # outside the lock: a handler may stop() the beat thread
    return sent


def transport():
    """"fd", "socket" or "none": where messages go."""
    with _lock:
        return _init()


def interval_usec():
    """Recommended beat interval: WATCHDOG_USEC / 2 (as systemd's
    sd_watchdog_enabled), 0 when no heartbeat is configured. WATCHDOG_PID is
    not compared with os.getpid(): under vigil any process of the child's
    tree may beat (a wrapper script starting python, for instance)."""
    value = os.environ.get("WATCHDOG_USEC", "")
    return int(value) // 2 if value.isascii() and value.isdigit() else 0


def _default_ms(interval_ms):
    if interval_ms is None:
        interval_ms = interval_usec() / 1000.0
    return interval_ms if interval_ms and interval_ms > 0 else DEFAULT_INTERVAL_MS


def ready():
    """READY=1: the program is ready (state running with ready = "notify")."""
    return send("READY=1")


def beat():
    """WATCHDOG=1: a heartbeat."""
    global _last_beat
    _last_beat = time.monotonic()
    return send("WATCHDOG=1")


def beat_if_due(interval_ms=None):
    """Beat if at least interval_ms (default: WATCHDOG_USEC / 2, else 1000)
    has passed since the last beat; cheap enough to call every loop turn.
    True when a beat was sent."""
    if transport() == "none":
        return False
    ms = _default_ms(interval_ms)
    now = time.monotonic()
    if _last_beat is not None and (now - _last_beat) * 1000.0 < ms:
        return False
    return beat()


def trigger():
    """WATCHDOG=trigger: the program knows it is hung; vigil restarts it now."""
    return send("WATCHDOG=trigger")


def stopping():
    """STOPPING=1: a clean shutdown has begun; no hang detection from here."""
    return send("STOPPING=1")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def status(text):
    """STATUS=text for `vigil status`: control characters become spaces, cut
    at 1024 bytes on a character boundary."""
    if transport() == "none":
        return False
    data = _CONTROL.sub(" ", str(text)).encode("utf-8", "replace")
    if len(data) > MAX_STATUS_BYTES:
        data = data[:MAX_STATUS_BYTES].decode("utf-8", "ignore").encode("utf-8")
    return send("STATUS=" + data.decode("utf-8"))


def memory(nbytes):
    """MEMORY=bytes: memory the program reports about itself."""
    n = int(nbytes)
    if n < 0:
        return False
    return send("MEMORY=%d" % n)


def rss_bytes():
    """This process's resident set size in bytes (/proc/self/statm); 0 if
    unknown."""
    try:
        with open("/proc/self/statm", "rb") as f:
            fields = f.read().split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def report_memory():
    """MEMORY=<this process's RSS>."""
    if transport() == "none":
        return False
    rss = rss_bytes()
    return memory(rss) if rss > 0 else False


def start(interval_ms=None, healthy=None):
    """Beat from a daemon thread every interval_ms (default: WATCHDOG_USEC
    / 2, else 1000). With healthy, a callable, a beat is sent only when
    healthy() returns true, so a stuck main loop still shows up as a hang.
    Returns True when there is somewhere to send to. Calling it again
    restarts the thread with the new settings."""
    global _thread, _thread_stop
    stop()
    if transport() == "none":
        return False
    ms = _default_ms(interval_ms)
    stop_event = threading.Event()

    def run():
        while not stop_event.is_set():
            try:
                ok = healthy() if healthy is not None else True
            except Exception:  # a failing check means "not healthy"
                ok = False
            if ok:
                beat()
            if stop_event.wait(ms / 1000.0):
                break

    with _lock:
        _thread_stop = stop_event
        _thread = threading.Thread(target=run, name="vigil-heartbeat", daemon=True)
        _thread.start()
    return True


def stop():
    """Stop the beat thread started by start() (send stopping() too when
    shutting down cleanly)."""
    global _thread, _thread_stop
    with _lock:
        thread, event = _thread, _thread_stop
        _thread = _thread_stop = None
    if event is not None:
        event.set()
    if thread is not None and thread is not threading.current_thread():
        thread.join()
