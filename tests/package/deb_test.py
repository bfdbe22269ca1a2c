#!/usr/bin/env python3
"""cpack -G DEB (what `make deb` runs), then `dpkg --root` into an empty
root (never the real /): every file of the package is installed, the
binary, man pages, completions, unit, examples and clients are among them,
the unit names /usr/bin/vigil, the Depends found by dpkg-shlibdeps are
real packages of this system, and the packaged `vigil version` runs.

    deb_test.py BUILD_DIR
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

EXPECTED = [
    "/usr/bin/vigil",
    "/usr/share/man/man1/vigil.1",
    "/usr/share/man/man5/vigil.toml.5",
    "/usr/share/bash-completion/completions/vigil",
    "/usr/share/zsh/vendor-completions/_vigil",
    "/usr/share/fish/vendor_completions.d/vigil.fish",
    "/usr/lib/systemd/system/vigil.service",
    "/usr/share/vigil/examples/vigil.toml",
    "/usr/share/vigil/clients/c/vigil_heartbeat.h",
    "/usr/share/vigil/clients/node/index.js",
    "/usr/share/vigil/clients/python/vigil_heartbeat.py",
]


def run(*cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    assert r.returncode == 0, "%s exited %d:\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr)
    return r.stdout


def main():
    build = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="vigil-deb-")
    try:
        out = os.path.join(work, "out")
        run("cpack", "-G", "DEB", "-B", out, cwd=build)
        debs = glob.glob(os.path.join(out, "vigil_*.deb"))
        assert len(debs) == 1, "expected one vigil_*.deb in %s, got %s" % (out, debs)
        deb = debs[0]

        depends = run("dpkg-deb", "-f", deb, "Depends").strip()
        names = [re.split(r"[\s(]", d.strip())[0] for d in depends.split(",") if d.strip()]
        for lib in ("libevent-core", "libprometheus-cpp-core", "libspdlog"):
            assert any(n.startswith(lib) for n in names), "Depends lacks %s: %s" % (lib, depends)
        for n in names:
            run("dpkg-query", "-W", n)  # each one a package this system has

        files = sorted(l.split()[-1].lstrip(".") for l in run("dpkg-deb", "-c", deb).splitlines()
                       if not l.startswith("d"))
        for f in EXPECTED:
            assert f in files, "%s not in the package: %s" % (f, files)

        root = os.path.join(work, "root")
        admin = os.path.join(root, "var/lib/dpkg")
        for d in ("info", "updates"):
            os.makedirs(os.path.join(admin, d))
        for f in ("status", "available"):
            open(os.path.join(admin, f), "w").close()
        # --force-all: the dependencies are not in this empty root;
        # --path-include: undo any path-exclude (docs, man) of this system.
        run("dpkg", "--root=" + root, "--force-all", "--path-include=*", "--log=/dev/null",
            "-i", deb)
        listed = run("dpkg", "--root=" + root, "-L", "vigil").split()
        for f in files:
            assert f in listed, "%s not recorded by dpkg" % f
            assert os.path.isfile(root + f), "%s not installed" % f
        assert os.access(root + "/usr/bin/vigil", os.X_OK)
        with open(root + "/usr/lib/systemd/system/vigil.service") as u:
            unit = u.read()
        assert "ExecStart=/usr/bin/vigil run " in unit, unit

        version = run(root + "/usr/bin/vigil", "version").strip()
        assert version.startswith("vigil "), version
        print("deb: %s, %d files installed into an empty root; %s; Depends: %s"
              % (os.path.basename(deb), len(files), version, depends))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
