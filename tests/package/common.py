"""Shared by the install, package and completion tests: a small config, a
vigil started on it, polled (never slept on) until `vigil status` answers."""
import os
import signal
import subprocess
import tempfile
import time


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("VIGIL_SOCKET", "NOTIFY_SOCKET")}
    env.update(extra)
    return env


def small_config(folder, programs=("alpha", "beta-2")):
    """Two programs that sleep; the socket and logs inside `folder`."""
    path = os.path.join(folder, "vigil.toml")
    with open(path, "w") as f:
        f.write('[vigil]\nlog_dir = "logs"\ncontrol_socket = "vigil.sock"\n')
        for name in programs:
            f.write('\n[programs.%s]\ncommand = ["sleep", "1000"]\nstop_timeout = "5s"\n' % name)
    return path


def poll_until(what, check, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class Vigil:
    """`vigil run -c CONFIG` as a child; stop() sends SIGTERM and returns the exit code."""

    def __init__(self, binary, config):
        self.binary, self.config = binary, config
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([binary, "run", "-c", config], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=clean_env(),
                                     cwd=os.path.dirname(config))

    def status(self):
        return subprocess.run([self.binary, "status", "-c", self.config], capture_output=True,
                              text=True, env=clean_env(), timeout=30)

    def wait_running(self, names, timeout=30.0):
        """Until `vigil status` exits 0 listing every name as running."""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("vigil exited %d early:\n%s" % (self.proc.returncode, self.output()))
            r = self.status()
            rows = [l.split() for l in r.stdout.splitlines()]
            running = {row[0] for row in rows if len(row) > 3 and row[3] == "running"}
            return r if r.returncode == 0 and set(names) <= running else None
        return poll_until("vigil status to show %s running" % ", ".join(names), ready, timeout)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, timeout=30.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("vigil did not exit within %.0f s of SIGTERM" % timeout)
