#!/usr/bin/env python3
"""`cmake --install BUILD --prefix /usr/local` with DESTDIR (what `make
install DESTDIR=... ` runs): every file lands where README says, the unit
names the installed binary, and the installed binary works: version, check
of the installed example configs, a run answering `vigil status`, a clean
exit on SIGTERM.

    install_test.py BUILD_DIR
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Vigil, clean_env, small_config  # noqa: E402

PREFIX = "/usr/local"
EXPECTED = [
    "bin/vigil",
    "share/man/man1/vigil.1",
    "share/man/man5/vigil.toml.5",
    "share/bash-completion/completions/vigil",
    "share/zsh/site-functions/_vigil",
    "share/fish/vendor_completions.d/vigil.fish",
    "lib/systemd/system/vigil.service",
    "share/vigil/examples/vigil.toml",
    "share/vigil/examples/watch.toml",
    "share/vigil/examples/demo/steady.sh",
    "share/vigil/clients/c/vigil_heartbeat.h",
    "share/vigil/clients/node/index.js",
    "share/vigil/clients/python/vigil_heartbeat.py",
]


def main():
    build = os.path.abspath(sys.argv[1])
    dest = tempfile.mkdtemp(prefix="vigil-install-")
    try:
        r = subprocess.run(["cmake", "--install", build, "--prefix", PREFIX],
                           env=clean_env(DESTDIR=dest), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, "cmake --install failed:\n" + r.stdout + r.stderr
        root = dest + PREFIX
        missing = [p for p in EXPECTED if not os.path.isfile(os.path.join(root, p))]
        assert not missing, "not installed: %s" % missing
        assert os.access(os.path.join(root, "bin/vigil"), os.X_OK)
        assert os.access(os.path.join(root, "share/vigil/examples/demo/steady.sh"), os.X_OK)
        # Nothing escaped DESTDIR into the prefix itself.
        stray = [l for l in r.stdout.splitlines()
                 if l.startswith(("-- Installing: ", "-- Up-to-date: ")) and not l.split(": ", 1)[1].startswith(dest)]
        assert not stray, "installed outside DESTDIR: %s" % stray

        with open(os.path.join(root, "lib/systemd/system/vigil.service")) as f:
            unit = f.read()
        assert "ExecStart=%s/bin/vigil run " % PREFIX in unit, unit
        assert "ExecStartPre=%s/bin/vigil check " % PREFIX in unit, unit

        vigil = os.path.join(root, "bin/vigil")
        r = subprocess.run([vigil, "version"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.startswith("vigil "), r
        for example in ("vigil.toml", "watch.toml"):
            cfg = os.path.join(root, "share/vigil/examples", example)
            r = subprocess.run([vigil, "check", "-c", cfg], capture_output=True, text=True,
                               timeout=30, env=clean_env())
            assert r.returncode == 0, "check %s: %s%s" % (example, r.stdout, r.stderr)

        run_dir = tempfile.mkdtemp(prefix="vigil-run-")
        try:
            v = Vigil(vigil, small_config(run_dir))
            try:
                v.wait_running(["alpha", "beta-2"])
            finally:
                code = v.stop()
            assert code == 0, "vigil exited %d on SIGTERM:\n%s" % (code, v.output())
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        print("install: %d files checked under DESTDIR%s, installed vigil ran and stopped cleanly"
              % (len(EXPECTED), PREFIX))
    finally:
        shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    main()
