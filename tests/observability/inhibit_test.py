#!/usr/bin/env python3
"""The shipped inhibit rules against a real Alertmanager: one page per problem.

Starts alertmanager on loopback with deploy/alertmanager/alertmanager.yml,
posts alerts as Prometheus would, and checks through its API which are
inhibited: a restart storm silences the same instance's "down" (a crash loop
is down between attempts) but not another instance's; fatal silences the
storm. Polls with a deadline; exits non-zero naming what differs.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "deploy", "alertmanager", "alertmanager.yml")
DEADLINE = 30.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"null")


def alert(name, program, index, severity="critical"):
    return {
        "labels": {"alertname": name, "severity": severity, "instance": "h:9321",
                   "program": program, "index": str(index), "job": "vigil"},
        "annotations": {"summary": name},
    }


def main():
    binary = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
    if not binary:
        sys.exit("inhibit_test: alertmanager not found (Debian package prometheus-alertmanager)")
    port, cluster = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        log = open(os.path.join(tmp, "alertmanager.log"), "w+")
        am = subprocess.Popen(
            [binary, f"--config.file={CONFIG}", f"--storage.path={tmp}",
             f"--web.listen-address=127.0.0.1:{port}",
             f"--cluster.listen-address=127.0.0.1:{cluster}"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + DEADLINE
            while True:
                try:
                    call(base + "/api/v2/status")
                    break
                except OSError:
                    if am.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        sys.exit("inhibit_test: alertmanager did not start:\n" + log.read())
                    time.sleep(0.05)

            sent = [
                alert("VigilRestartStorm", "web", 0),
                alert("VigilProgramDown", "web", 0),   # inhibited: same instance storms
                alert("VigilProgramDown", "web", 1),   # not: index 1 does not storm
                alert("VigilProgramFatal", "db", 0),
                alert("VigilRestartStorm", "db", 0),   # inhibited by fatal
            ]
            call(base + "/api/v2/alerts", sent)
            want = {("VigilRestartStorm", "web", "0"): False,
                    ("VigilProgramDown", "web", "0"): True,
                    ("VigilProgramDown", "web", "1"): False,
                    ("VigilProgramFatal", "db", "0"): False,
                    ("VigilRestartStorm", "db", "0"): True}
            got = {}
            while time.monotonic() < deadline:
                got = {(a["labels"]["alertname"], a["labels"]["program"], a["labels"]["index"]):
                       bool(a["status"]["inhibitedBy"]) for a in call(base + "/api/v2/alerts")}
                if got == want:
                    break
                time.sleep(0.1)
            for key, inhibited in sorted(want.items()):
                print(f"  {key[0]} {key[1]}/{key[2]}: {'inhibited' if inhibited else 'pages'}")
            if got != want:
                sys.exit(f"inhibit_test: FAIL: want {want}\n  got {got}")
            print("inhibit_test: ok")
        finally:
            am.terminate()
            am.wait(timeout=10)


if __name__ == "__main__":
    main()
