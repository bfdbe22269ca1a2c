#!/usr/bin/env python3
"""The heartbeat clients in clients/ (C header, Node module, Python module)
against a real pipe on fd 3 and a real NOTIFY_SOCKET datagram socket, with
no vigil involved. Standard library only. Every wait is a poll with a
deadline; nothing sleeps to synchronise.

    python3 -m unittest -v tests/clients/test_clients.py     (or tests/clients/run.sh)
"""

import fcntl
import importlib
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import uuid
from pathlib import Path

# No __pycache__ in the source tree, from this process or the clients it runs.
sys.dont_write_bytecode = True
os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
C_DIR = REPO / "clients" / "c"
NODE_DIR = REPO / "clients" / "node"
PY_DIR = REPO / "clients" / "python"

NODE = shutil.which("node") or "/usr/bin/node"
CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
CXX = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
SYSTEMD_NOTIFY = shutil.which("systemd-notify")

WATCHDOG_USEC = 200_000          # clients beat every WATCHDOG_USEC / 2 = 100 ms
BEAT_S = WATCHDOG_USEC / 2 / 1e6
READ_DEADLINE_S = 15.0           # generous: a loaded CI machine starts node slowly
EXIT_DEADLINE_S = 10.0
GONE_EPIPE = "vigil is gone (EPIPE on heartbeat fd); exiting"
PROTOCOL_ENV = ("VIGIL_HEARTBEAT_FD", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                "VIGIL_PROGRAM", "VIGIL_INSTANCE", "NODE_APP_INSTANCE")

_build_dir = None
_built = {}


def setUpModule():
    global _build_dir
    _build_dir = tempfile.mkdtemp(prefix="vigil-clients-test-")


def tearDownModule():
    if _build_dir:
        shutil.rmtree(_build_dir, ignore_errors=True)


def compile_c(name, sources, *flags):
    """Build once per run; the header must compile warning-free."""
    if CC is None:
        raise unittest.SkipTest("no C compiler (cc)")
    if name not in _built:
        out = os.path.join(_build_dir, name)
        cmd = [CC, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2",
               "-I", str(C_DIR), *flags, "-o", out, *map(str, sources)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise AssertionError("%s failed:\n%s" % (" ".join(cmd), res.stderr))
        _built[name] = out
    return _built[name]


def clean_env(**extra):
    """The test's own environment minus anything a real supervisor may have set."""
    env = {k: v for k, v in os.environ.items() if k not in PROTOCOL_ENV}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def spawn(testcase, argv, env, fd3=None, stdout=subprocess.DEVNULL, at=3):
    """Start argv with fd3 (if given) as its fd `at` (3 unless held sockets
    come first: then fds 3..at-1 are /dev/null, which a client writing to
    fd 3 regardless would leave alone as not a pipe); stdout discarded
    unless asked for, stderr kept. Killed and reaped at the end of the test
    if still running."""
    def preexec():
        if fd3 is None:
            return
        if fd3 == at:
            os.set_inheritable(at, True)
        else:
            os.dup2(fd3, at)  # the new fd is inheritable; our others are not (PEP 446)
        for fd in range(3, at):
            null = os.open("/dev/null", os.O_RDWR)
            os.dup2(null, fd)
            os.close(null)

    # close_fds=False: it would run after preexec_fn and close fd 3 as well.
    # Every fd this test opens is non-inheritable, so nothing else leaks in.
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.PIPE, preexec_fn=preexec, close_fds=False)

    def reap():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()

    testcase.addCleanup(reap)
    return proc


def wait_exit(testcase, proc, deadline=EXIT_DEADLINE_S):
    try:
        _, err = proc.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        testcase.fail("the client did not exit within %.0f s" % deadline)
    return proc.returncode, err.decode("utf-8", "replace")


def rss_bytes_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Received:
    """Protocol lines as they arrive, each with its arrival time."""

    def __init__(self):
        self.lines = []  # (monotonic seconds, "KEY=VALUE")
        self.eof = False

    def _receive(self, timeout):
        raise NotImplementedError

    def wait_for(self, predicate, what, deadline=READ_DEADLINE_S):
        end = time.monotonic() + deadline
        while not predicate(self):
            left = end - time.monotonic()
            if left <= 0 or self.eof:
                raise AssertionError("%s: %s; received %r"
                                     % ("end of stream" if self.eof else "timed out",
                                        what, self.texts()))
            self._receive(left)

    def texts(self):
        return [text for _, text in self.lines]

    def values(self, key):
        prefix = key + "="
        return [text[len(prefix):] for text in self.texts() if text.startswith(prefix)]

    def beat_times(self):
        return [t for t, text in self.lines if text == "WATCHDOG=1"]

    def has_start_messages(self, beats):
        return (self.values("READY") and self.values("STATUS") and self.values("MEMORY")
                and len(self.beat_times()) >= beats)


class PipeReader(Received):
    """The read end of the heartbeat pipe; closing it is "vigil died"."""

    def __init__(self, fd):
        super().__init__()
        self.fd = fd
        self.partial = b""

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _receive(self, timeout):
        if not select.select([self.fd], [], [], timeout)[0]:
            return
        data = os.read(self.fd, 65536)
        now = time.monotonic()
        if not data:
            self.eof = True
            return
        *complete, self.partial = (self.partial + data).split(b"\n")
        self.lines.extend((now, line.decode("utf-8")) for line in complete)

    def read_to_eof(self, deadline=EXIT_DEADLINE_S):
        end = time.monotonic() + deadline
        while not self.eof:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no EOF on the heartbeat pipe; received %r" % self.texts())
            self._receive(left)
        return self


class DatagramReceiver(Received):
    """A bound NOTIFY_SOCKET: a path in a temp dir, or an abstract '@' name."""

    def __init__(self, testcase, abstract=False):
        super().__init__()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        if abstract:
            name = "vigil-test-%d-%s" % (os.getpid(), uuid.uuid4().hex[:12])
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            tmp = tempfile.mkdtemp(prefix="vigil-notify-")
            testcase.addCleanup(shutil.rmtree, tmp, True)
            self.address = os.path.join(tmp, "notify.sock")
            self.sock.bind(self.address)
        testcase.addCleanup(self.close)

    def _receive(self, timeout):
        if not select.select([self.sock], [], [], timeout)[0]:
            return
        data = self.sock.recv(65536)
        now = time.monotonic()
        # A datagram holds newline-separated lines, the last '\n' optional.
        self.lines.extend((now, line.decode("utf-8")) for line in data.split(b"\n") if line)

    def close(self):
        if self.sock.fileno() >= 0:
            self.sock.close()


# --- the clients, each driven by a small program ----------------------------

NODE_FOREVER = r"""
const hb = require(process.argv[1]);
hb.ready(); hb.status('node client started'); hb.reportMemory(); hb.start();
setInterval(() => {}, 1 << 30);  // the beat timer is unref'd: keep the process alive
"""
NODE_FINITE = r"""
const hb = require(process.argv[1]);
hb.ready(); hb.status('node client started'); hb.reportMemory(); hb.start();
setTimeout(() => { hb.stopping(); }, 350);  // then nothing is left but the unref'd beat timer
"""
NODE_STATUS = r"""
const hb = require(process.argv[1]);
process.exit(hb.status('line1\nline2 ' + '\u00e9'.repeat(2000)) ? 0 : 1);
"""
PY_PRELUDE = "import sys, signal, threading, time\nsys.path.insert(0, sys.argv[1])\nimport vigil_heartbeat as hb\n"
PY_FOREVER_LOOP = PY_PRELUDE + r"""
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # as CLI tools do: EPIPE must still be seen and reported
hb.ready(); hb.status('python loop started'); hb.report_memory()
while True:
    hb.beat_if_due()
    time.sleep(0.005)
"""
PY_FOREVER_THREAD = PY_PRELUDE + r"""
hb.ready(); hb.status('python thread started'); hb.report_memory(); hb.start()
threading.Event().wait()
"""
PY_FINITE = PY_PRELUDE + r"""
hb.ready(); hb.status('python client started'); hb.report_memory(); hb.start()
end = time.monotonic() + 0.35
while time.monotonic() < end:
    hb.beat_if_due()
    time.sleep(0.01)
hb.stopping(); hb.stop()
"""
PY_STATUS = PY_PRELUDE + r"""
sys.exit(0 if hb.status('line1\nline2 ' + '\u00e9' * 2000) else 1)
"""


class ClientContract:
    """What every client must do; subclasses say how to run one."""

    status_prefix = None      # what the client's first STATUS starts with
    gone_socket_marker = "vigil is gone ("
    supports_socket = True

    def forever(self):        # ready, status, memory, then beats until EPIPE
        raise NotImplementedError

    def finite(self):         # the same for ~0.3 s, then exits 0 by itself
        raise NotImplementedError

    def status_probe(self):   # one STATUS "line1\nline2 " + 2000 x U+00E9, exit 0
        raise NotImplementedError

    # -- helpers

    def start_on_pipe(self, argv, at=3, **env):
        r, w = os.pipe()
        received = PipeReader(r)
        self.addCleanup(received.close)
        proc = spawn(self, argv, clean_env(VIGIL_HEARTBEAT_FD=at, **env), fd3=w, at=at)
        os.close(w)
        return proc, received

    def assert_cadence(self, times):
        gaps = [b - a for a, b in zip(times, times[1:])]
        median = statistics.median(gaps)
        mean = (times[-1] - times[0]) / (len(times) - 1)
        # 100 ms nominal. The median shrugs off a late wake-up under load yet
        # still tells half the interval (100 ms) from the whole (200 ms); the
        # mean catches floods and usec/ms mix-ups.
        self.assertGreater(median, 0.6 * BEAT_S, "beats too fast: gaps %r" % gaps)
        self.assertLess(median, 1.5 * BEAT_S, "beats too slow: gaps %r" % gaps)
        self.assertGreater(mean, 0.5 * BEAT_S, "beats too fast: gaps %r" % gaps)
        self.assertLess(mean, 2.5 * BEAT_S, "beats too slow: gaps %r" % gaps)

    def assert_start_messages(self, received, proc):
        texts = received.texts()
        self.assertEqual(texts[0], "READY=1", texts)
        self.assertTrue(received.values("STATUS")[0].startswith(self.status_prefix), texts)
        reported = int(received.values("MEMORY")[0])
        actual = rss_bytes_of(proc.pid)
        self.assertGreater(reported, 100 * 1024)
        self.assertTrue(actual / 4 <= reported <= actual * 4,
                        "MEMORY=%d but /proc says RSS %d" % (reported, actual))
        self.assertLess(texts.index("READY=1"), texts.index("WATCHDOG=1"))
        unexpected = [t for t in texts if t.split("=", 1)[0] not in ("READY", "STATUS", "MEMORY", "WATCHDOG")]
        self.assertEqual(unexpected, [])

    def require_socket(self):
        if not self.supports_socket:
            self.skipTest("this client has no NOTIFY_SOCKET transport here")

    # -- fd 3

    def test_pipe_ready_status_memory_then_beats_at_half_the_watchdog_interval(self):
        proc, received = self.start_on_pipe(self.forever(), WATCHDOG_USEC=WATCHDOG_USEC)
        received.wait_for(lambda r: r.has_start_messages(beats=7), "READY, STATUS, MEMORY and 7 beats")
        self.assert_start_messages(received, proc)
        self.assert_cadence(received.beat_times())

    def test_pipe_after_held_sockets_is_found_through_vigil_heartbeat_fd(self):
        # A program with two `listen` sockets has them at fds 3 and 4; the
        # pipe is at 5 and VIGIL_HEARTBEAT_FD says so.
        proc, received = self.start_on_pipe(self.forever(), at=5, WATCHDOG_USEC=WATCHDOG_USEC)
        received.wait_for(lambda r: r.has_start_messages(beats=2), "READY, STATUS, MEMORY and 2 beats on fd 5")
        self.assert_start_messages(received, proc)

    def test_pipe_read_end_closed_client_exits_0_on_epipe(self):
        proc, received = self.start_on_pipe(self.forever(), WATCHDOG_USEC=WATCHDOG_USEC)
        received.wait_for(lambda rc: rc.beat_times(), "a first beat")
        received.close()
        code, err = wait_exit(self, proc)
        self.assertEqual(code, 0, err)
        self.assertIn(GONE_EPIPE, err)

    def test_status_is_one_sanitised_line_cut_on_a_character_boundary(self):
        proc, received = self.start_on_pipe(self.status_probe())
        received.read_to_eof()
        code, err = wait_exit(self, proc)
        self.assertEqual(code, 0, err)
        self.assertEqual(len(received.texts()), 1, received.texts())  # decoded as strict UTF-8 already
        text = received.values("STATUS")[0]
        self.assertTrue(text.startswith("line1 line2 \u00e9"), text[:40])
        self.assertLessEqual(len(text.encode("utf-8")), 1024)
        self.assertGreaterEqual(len(text.encode("utf-8")), 1000)

    # -- not under vigil

    def test_noop_without_protocol_environment(self):
        r, w = os.pipe()
        received = PipeReader(r)
        self.addCleanup(received.close)
        proc = spawn(self, self.finite(), clean_env(WATCHDOG_USEC=WATCHDOG_USEC), fd3=w)
        os.close(w)
        code, err = wait_exit(self, proc)
        self.assertEqual((code, err), (0, ""))
        received.read_to_eof()
        self.assertEqual(received.texts(), [])
        self.assertEqual(received.partial, b"")

    def test_heartbeat_fd_that_is_not_a_pipe_is_left_alone(self):
        with tempfile.TemporaryFile() as f:
            proc = spawn(self, self.finite(),
                         clean_env(VIGIL_HEARTBEAT_FD=3, WATCHDOG_USEC=WATCHDOG_USEC), fd3=f.fileno())
            code, err = wait_exit(self, proc)
            self.assertEqual((code, err), (0, ""))
            f.seek(0)
            self.assertEqual(f.read(), b"")

    # -- NOTIFY_SOCKET

    def start_on_socket(self, abstract=False):
        self.require_socket()
        receiver = DatagramReceiver(self, abstract=abstract)
        proc = spawn(self, self.forever(),
                     clean_env(NOTIFY_SOCKET=receiver.address, WATCHDOG_USEC=WATCHDOG_USEC))
        return proc, receiver

    def test_socket_ready_status_memory_then_beats(self):
        proc, received = self.start_on_socket()
        received.wait_for(lambda r: r.has_start_messages(beats=6), "READY, STATUS, MEMORY and 6 beats")
        self.assert_start_messages(received, proc)
        self.assert_cadence(received.beat_times())

    def test_socket_closed_client_exits_0(self):
        proc, received = self.start_on_socket()
        received.wait_for(lambda r: r.beat_times(), "a first beat")
        received.close()  # the path stays: the next send is refused
        code, err = wait_exit(self, proc)
        self.assertEqual(code, 0, err)
        self.assertIn(self.gone_socket_marker, err)

    def test_socket_removed_client_exits_0(self):
        proc, received = self.start_on_socket()
        received.wait_for(lambda r: r.beat_times(), "a first beat")
        os.unlink(received.address)
        received.close()
        code, err = wait_exit(self, proc)
        self.assertEqual(code, 0, err)
        self.assertIn(self.gone_socket_marker, err)

    def test_abstract_socket_messages_then_exit_when_closed(self):
        proc, received = self.start_on_socket(abstract=True)
        received.wait_for(lambda r: r.has_start_messages(beats=3), "READY, STATUS, MEMORY and 3 beats")
        self.assert_start_messages(received, proc)
        received.close()
        code, err = wait_exit(self, proc)
        self.assertEqual(code, 0, err)
        self.assertIn(self.gone_socket_marker, err)


class CClientTest(ClientContract, unittest.TestCase):
    status_prefix = "example: started"

    def forever(self):
        return [compile_c("example", [C_DIR / "example.c"])]

    def finite(self):
        return [compile_c("example", [C_DIR / "example.c"]), "3"]

    def status_probe(self):
        return [compile_c("c_probe", [HERE / "c_probe.c"]), "status"]

    def test_header_compiles_cleanly_in_two_translation_units_as_c_and_cpp(self):
        if CC is None:
            self.skipTest("no C compiler")
        tmp = tempfile.mkdtemp(dir=_build_dir)
        one = '#include <stdio.h>\n#include "vigil_heartbeat.h"\nint other(void) { return vigil_hb_beat(); }\n'
        two = ('#include "vigil_heartbeat.h"\nint other(void);\n'
               'int main(void) { vigil_hb_ready(); vigil_hb_status("x"); vigil_hb_memory(1);\n'
               '  vigil_hb_report_memory(); vigil_hb_stopping(); vigil_hb_trigger();\n'
               '  return other() + (vigil_hb_interval_usec() > 0 ? 1 : 0); }\n')
        builds = [(CC, "c", ["-std=c99", "-D_POSIX_C_SOURCE=200809L"]), (CC, "c", ["-std=gnu11"])]
        if CXX:
            builds += [(CXX, "cpp", ["-std=c++11", "-Wold-style-cast", "-Wzero-as-null-pointer-constant"]),
                       (CXX, "cpp", ["-std=c++17"])]
        for compiler, ext, flags in builds:
            with self.subTest(compiler=compiler, flags=flags):
                paths = []
                for name, text in (("one", one), ("two", two)):
                    path = os.path.join(tmp, "%s.%s" % (name, ext))
                    Path(path).write_text(text)
                    paths.append(path)
                cmd = [compiler, "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-Wshadow", "-Wconversion",
                       *flags, "-I", str(C_DIR), *paths, "-o", os.path.join(tmp, "two_" + ext)]
                res = subprocess.run(cmd, capture_output=True, text=True)
                self.assertEqual(res.returncode, 0, " ".join(cmd) + "\n" + res.stderr)

    def test_header_after_a_system_header_in_strict_c_says_what_to_do(self):
        if CC is None:
            self.skipTest("no C compiler")
        tmp = tempfile.mkdtemp(dir=_build_dir)
        path = os.path.join(tmp, "late.c")
        Path(path).write_text('#include <stdio.h>\n#include "vigil_heartbeat.h"\nint main(void) { return vigil_hb_beat(); }\n')
        res = subprocess.run([CC, "-std=c11", "-I", str(C_DIR), "-c", path, "-o", os.devnull],
                             capture_output=True, text=True)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("include it before any system header", res.stderr)

    def test_no_exit_mode_returns_epipe_and_leaves_no_sigpipe_pending(self):
        probe = compile_c("c_probe_no_exit", [HERE / "c_probe.c"], "-DVIGIL_HB_NO_EXIT")
        proc, received = self.start_on_pipe([probe, "no-exit"])
        received.wait_for(lambda rc: rc.beat_times(), "a first beat")
        received.close()
        code, err = wait_exit(self, proc)
        self.assertEqual(code, 0, "c_probe failed check %d: %s" % (code, err))
        self.assertNotIn("vigil is gone", err)


class NodeClientTest(ClientContract, unittest.TestCase):
    status_prefix = "node client started"
    supports_socket = SYSTEMD_NOTIFY is not None  # Node has no AF_UNIX datagrams: systemd-notify

    @classmethod
    def setUpClass(cls):
        if not os.access(NODE, os.X_OK):
            raise unittest.SkipTest("node not found")

    def forever(self):
        return [NODE, "-e", NODE_FOREVER, str(NODE_DIR)]

    def finite(self):
        return [NODE, "-e", NODE_FINITE, str(NODE_DIR)]

    def status_probe(self):
        return [NODE, "-e", NODE_STATUS, str(NODE_DIR)]

    def test_beat_timer_does_not_keep_the_process_alive(self):
        proc, received = self.start_on_pipe(self.finite(), WATCHDOG_USEC=WATCHDOG_USEC)
        code, err = wait_exit(self, proc)
        self.assertEqual((code, err), (0, ""))
        received.read_to_eof()
        texts = received.texts()
        self.assertEqual(texts[0], "READY=1")
        self.assertEqual(texts[-1], "STOPPING=1")
        self.assertGreaterEqual(len(received.beat_times()), 2, texts)

    def test_notify_socket_without_systemd_notify_warns_once_and_runs_on(self):
        receiver = DatagramReceiver(self)
        empty_path = tempfile.mkdtemp(dir=_build_dir)
        proc = spawn(self, self.finite(), clean_env(NOTIFY_SOCKET=receiver.address,
                                                    WATCHDOG_USEC=WATCHDOG_USEC, PATH=empty_path))
        code, err = wait_exit(self, proc)
        self.assertEqual(code, 0, err)
        self.assertEqual(err.count("systemd-notify is not installed"), 1, err)
        self.assertEqual(err.count("\n"), 1, err)


class PythonLoopClientTest(ClientContract, unittest.TestCase):
    """beat_if_due() from the program's own loop, SIGPIPE at SIG_DFL."""
    status_prefix = "python loop started"

    def forever(self):
        return [sys.executable, "-c", PY_FOREVER_LOOP, str(PY_DIR)]

    def finite(self):
        return [sys.executable, "-c", PY_FINITE, str(PY_DIR)]

    def status_probe(self):
        return [sys.executable, "-c", PY_STATUS, str(PY_DIR)]


class PythonThreadClientTest(ClientContract, unittest.TestCase):
    """start(): the daemon thread beats; Python's default SIGPIPE (ignored)."""
    status_prefix = "python thread started"

    def forever(self):
        return [sys.executable, "-c", PY_FOREVER_THREAD, str(PY_DIR)]

    def finite(self):
        return [sys.executable, "-c", PY_FINITE, str(PY_DIR)]

    def status_probe(self):
        return [sys.executable, "-c", PY_STATUS, str(PY_DIR)]


class PythonModuleTest(unittest.TestCase):
    """The module in this process, for what a subprocess cannot show."""

    def test_gone_handler_gets_the_reason_and_heartbeats_go_quiet(self):
        r, w = os.pipe()
        self.addCleanup(os.close, w)
        saved = {k: os.environ.get(k) for k in PROTOCOL_ENV}
        sys.path.insert(0, str(PY_DIR))
        try:
            for k in PROTOCOL_ENV:
                os.environ.pop(k, None)
            os.environ["VIGIL_HEARTBEAT_FD"] = str(w)
            import vigil_heartbeat
            hb = importlib.reload(vigil_heartbeat)
            reasons = []
            hb.set_on_gone(reasons.append)
            self.assertTrue(hb.ready())
            self.assertEqual(os.read(r, 100), b"READY=1\n")
            os.close(r)
            self.assertFalse(hb.beat())
            self.assertEqual(reasons, ["EPIPE on heartbeat fd"])
            self.assertEqual(hb.transport(), "none")
            self.assertFalse(hb.beat())
            self.assertEqual(reasons, ["EPIPE on heartbeat fd"])
            self.assertNotIn(signal.SIGPIPE, signal.sigpending())
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            sys.path.remove(str(PY_DIR))
            sys.modules.pop("vigil_heartbeat", None)


DEMO = REPO / "config" / "demo"


class DemoTest(unittest.TestCase):
    """The example apps in config/demo: they use the clients and run the
    same without vigil."""

    def read_stdout_line(self, proc, pattern, deadline=READ_DEADLINE_S):
        end, seen = time.monotonic() + deadline, b""
        while True:
            match = re.search(pattern, seen.decode("utf-8", "replace"))
            if match:
                return match
            left = end - time.monotonic()
            if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
                self.fail("no %r on stdout; got %r" % (pattern, seen))
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                self.fail("stdout closed before %r; got %r" % (pattern, seen))
            seen += chunk

    def start_node_app(self, env, fd3=None):
        if not os.access(NODE, os.X_OK):
            self.skipTest("node not found")
        proc = spawn(self, [NODE, str(DEMO / "node_app.js")], env, fd3=fd3, stdout=subprocess.PIPE)
        port = int(self.read_stdout_line(proc, r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        return proc, port

    def http_get(self, port, path):
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with no_proxy.open("http://127.0.0.1:%d%s" % (port, path), timeout=10) as resp:
            return resp.status, resp.read().decode()

    def test_node_app_reports_ready_beats_and_stopping_on_sigterm(self):
        r, w = os.pipe()
        received = PipeReader(r)
        self.addCleanup(received.close)
        proc, port = self.start_node_app(clean_env(VIGIL_HEARTBEAT_FD=3, WATCHDOG_USEC=WATCHDOG_USEC, PORT=0), fd3=w)
        os.close(w)
        received.wait_for(lambda rc: len(rc.beat_times()) >= 2, "READY and 2 beats")
        self.assertEqual(received.texts()[0], "READY=1")
        self.assertEqual(self.http_get(port, "/health"), (200, "ok\n"))
        proc.send_signal(signal.SIGTERM)
        received.read_to_eof()
        self.assertEqual(received.texts()[-1], "STOPPING=1")
        code, err = wait_exit(self, proc)
        self.assertEqual((code, err), (0, ""))

    def test_node_app_runs_without_vigil(self):
        proc, port = self.start_node_app(clean_env(PORT=0))
        status, body = self.http_get(port, "/")
        self.assertEqual(status, 200)
        self.assertIn("request 1", body)
        proc.send_signal(signal.SIGTERM)
        code, err = wait_exit(self, proc)
        self.assertEqual((code, err), (0, ""))

    def test_python_worker_reports_ready_beats_and_stopping(self):
        r, w = os.pipe()
        received = PipeReader(r)
        self.addCleanup(received.close)
        proc = spawn(self, [sys.executable, str(DEMO / "python_worker.py"), "--jobs", "10"],
                     clean_env(VIGIL_HEARTBEAT_FD=3, WATCHDOG_USEC=WATCHDOG_USEC), fd3=w)
        os.close(w)
        received.read_to_eof()
        code, err = wait_exit(self, proc)
        self.assertEqual((code, err), (0, ""))
        texts = received.texts()
        self.assertEqual(texts[0], "READY=1")
        self.assertEqual(texts[-1], "STOPPING=1")
        self.assertGreaterEqual(len(received.beat_times()), 2, texts)

    def test_python_worker_runs_without_vigil(self):
        proc = spawn(self, [sys.executable, str(DEMO / "python_worker.py"), "--jobs", "3"], clean_env())
        code, err = wait_exit(self, proc)
        self.assertEqual((code, err), (0, ""))

    # -- socket activation: the servers vigil runs with `listen`

    def run_activated(self, argv):
        """argv as vigil runs a program with `listen = ["127.0.0.1:0"]`: a
        listening socket at fd 3, the heartbeat pipe at fd 4, LISTEN_FDS=1,
        LISTEN_PID its own pid. GETs / twice, then SIGTERM; returns the
        bodies and the heartbeat messages; the socket outlives the process."""
        held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        held.listen(16)
        port = held.getsockname()[1]
        r, w = os.pipe()
        received = PipeReader(r)
        self.addCleanup(received.close)

        def preexec():
            # Out of the way first: either may be at 3 or 4 already.
            sock_fd, pipe_fd = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (held.fileno(), w))
            os.dup2(sock_fd, 3)  # inheritable, unlike the rest (PEP 446)
            os.dup2(pipe_fd, 4)

        # LISTEN_PID is the pid of the process that execs the server: the
        # shell's own, which exec keeps.
        env = clean_env(LISTEN_FDS="1", LISTEN_FDNAMES="web", VIGIL_HEARTBEAT_FD="4",
                        WATCHDOG_USEC=WATCHDOG_USEC)
        proc = subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", *argv], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, preexec_fn=preexec, close_fds=False)
        self.addCleanup(lambda: (proc.poll() is None and proc.kill(), proc.communicate()))
        os.close(w)
        received.wait_for(lambda rc: "READY=1" in rc.texts(), "READY=1 on fd 4")
        bodies = [self.http_get(port, "/")[1] for _ in range(2)]
        proc.send_signal(signal.SIGTERM)
        code, err = wait_exit(self, proc)
        self.assertEqual((code, err), (0, ""))
        received.read_to_eof()
        # Still held here: a connection waits in the backlog for the next one.
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return bodies, received.texts()

    def test_node_app_serves_the_socket_passed_at_fd_3(self):
        if not os.access(NODE, os.X_OK):
            self.skipTest("node not found")
        bodies, texts = self.run_activated([NODE, str(DEMO / "node_app.js")])
        self.assertEqual(bodies, ["hello from node_app instance 0, request 1\n",
                                  "hello from node_app instance 0, request 2\n"])
        self.assertEqual(texts[-1], "STOPPING=1")

    def test_python_server_serves_the_socket_passed_at_fd_3(self):
        bodies, texts = self.run_activated([sys.executable, str(DEMO / "python_server.py")])
        self.assertEqual(len(bodies), 2)
        for body in bodies:
            self.assertRegex(body, r"^hello from python_server pid \d+\n$")
        self.assertEqual(texts[-1], "STOPPING=1")

    def test_python_server_runs_without_vigil(self):
        proc = spawn(self, [sys.executable, str(DEMO / "python_server.py")], clean_env(PORT="0"),
                     stdout=subprocess.PIPE)
        port = int(self.read_stdout_line(proc, r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        self.assertEqual(self.http_get(port, "/health"), (200, "ok\n"))
        proc.send_signal(signal.SIGTERM)
        code, err = wait_exit(self, proc)
        self.assertEqual((code, err), (0, ""))


if __name__ == "__main__":
    unittest.main(verbosity=2)
