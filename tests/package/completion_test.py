#!/usr/bin/env python3
"""The shell completions against a real running vigil.

bash: completions/vigil.bash sourced into a non-interactive bash, _vigil
called with COMP_WORDS/COMP_CWORD as readline would: commands, options and
program names (read from the running vigil, found through -c, through
$VIGIL_SOCKET and through ./vigil.toml). fish: the same through
`complete -C`. zsh (whose completion system needs a terminal): _vigil
called with words/CURRENT set and compadd replaced by a function printing
the candidates.

    completion_test.py VIGIL SOURCE_DIR
"""
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Vigil, clean_env, small_config  # noqa: E402


def bash_complete(source, words, cwd, env):
    """COMPREPLY for the command line `words` (the last one being completed)."""
    script = "source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_vigil\nprintf '%%s\\n' \"${COMPREPLY[@]}\"\n" % (
        shlex.quote(os.path.join(source, "completions/vigil.bash")),
        " ".join(shlex.quote(w) for w in words), len(words) - 1)
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                       text=True, cwd=cwd, env=env, timeout=30)
    assert r.returncode == 0 and not r.stderr, "bash: %s\n%s" % (words, r.stderr)
    return set(l for l in r.stdout.splitlines() if l)


def fish_complete(source, line, cwd, env):
    script = "source %s; complete -C %s" % (
        shlex.quote(os.path.join(source, "completions/vigil.fish")), shlex.quote(line))
    r = subprocess.run(["fish", "--no-config", "-c", script], capture_output=True, text=True,
                       cwd=cwd, env=env, timeout=30)
    assert r.returncode == 0 and not r.stderr, "fish: %r\n%s" % (line, r.stderr)
    return set(l.split("\t")[0] for l in r.stdout.splitlines() if l)


ZSH_STUB = r"""
compadd() { local a seen=0; for a in "$@"; do
  if (( seen )); then print -r -- $a; elif [[ $a == -- ]]; then seen=1; fi; done }
_files() { print -r -- FILES }
_message() { : }
"""


def zsh_complete(source, words, cwd, env):
    """The candidates _vigil offers (unfiltered by the prefix: compadd filters)."""
    script = ZSH_STUB + "words=(%s)\nCURRENT=%d\nPREFIX=%s\nsource %s\n" % (
        " ".join(shlex.quote(w) for w in words), len(words), shlex.quote(words[-1]),
        shlex.quote(os.path.join(source, "completions/_vigil")))
    r = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True, cwd=cwd,
                       env=env, timeout=30)
    assert r.returncode == 0 and not r.stderr, "zsh: %s\n%s" % (words, r.stderr)
    return set(l for l in r.stdout.splitlines() if l)


def main():
    vigil, source = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    env = clean_env(PATH=os.path.dirname(vigil) + os.pathsep + os.environ.get("PATH", ""))
    # `vigil` on PATH must be the binary under test.
    assert shutil.which("vigil", path=env["PATH"]) == vigil
    run_dir = tempfile.mkdtemp(prefix="vigil-comp-")
    elsewhere = tempfile.mkdtemp(prefix="vigil-comp-cwd-")
    failures = []

    def expect(shell, case, got, want, exact=True):
        ok = got == want if exact else want <= got
        if not ok:
            failures.append("%s %r: got %s, want %s%s" % (shell, case, sorted(got), sorted(want),
                                                         "" if exact else " among them"))

    try:
        cfg = small_config(run_dir)
        v = Vigil(vigil, cfg)
        try:
            v.wait_running(["alpha", "beta-2"])
            sock = os.path.join(run_dir, "vigil.sock")
            cases = [
                # (words, cwd, extra env, expected, exact)
                (["vigil", "st"], elsewhere, {}, {"status", "start", "stop"}, True),
                (["vigil", ""], elsewhere, {}, {"run", "check", "status", "start", "stop",
                                                "restart", "reload", "logs", "version", "help"}, False),
                (["vigil", "help", "re"], elsewhere, {}, {"restart", "reload"}, True),
                (["vigil", "restart", "--a"], elsewhere, {}, {"--all-at-once"}, True),
                (["vigil", "logs", "--"], elsewhere, {}, {"--follow", "--lines", "--help"}, False),
                (["vigil", "status", "-c", cfg, ""], elsewhere, {}, {"alpha", "beta-2"}, True),
                (["vigil", "restart", "-c", cfg, "alpha", "b"], elsewhere, {}, {"beta-2"}, True),
                (["vigil", "stop", "-c", cfg, ""], elsewhere, {}, {"all", "alpha", "beta-2"}, True),
                (["vigil", "logs", ""], elsewhere, {"VIGIL_SOCKET": sock}, {"alpha", "beta-2"}, True),
                (["vigil", "start", "a"], run_dir, {}, {"all", "alpha"}, True),
                # No vigil answers: no names, no error.
                (["vigil", "status", ""], elsewhere, {}, set(), True),
            ]
            for words, cwd, extra, want, exact in cases:
                got = bash_complete(source, words, cwd, dict(env, **extra))
                expect("bash", words, got, want, exact)

            if shutil.which("zsh"):
                for words, cwd, extra, want in [
                    (["vigil", ""], elsewhere, {}, {"run", "status", "start", "stop", "help"}),
                    (["vigil", "restart", "--"], elsewhere, {}, {"--all-at-once", "--help"}),
                    (["vigil", "status", "-c", cfg, ""], elsewhere, {}, {"alpha", "beta-2"}),
                    (["vigil", "stop", ""], elsewhere, {"VIGIL_SOCKET": sock}, {"all", "alpha", "beta-2"}),
                    (["vigil", "logs", ""], run_dir, {}, {"alpha", "beta-2"}),
                    (["vigil", "run", "-c", ""], elsewhere, {}, {"FILES"}),
                ]:
                    got = zsh_complete(source, words, cwd, dict(env, **extra))
                    expect("zsh", words, got, want, exact=False)
            else:
                print("zsh is not installed: its completion is not checked")

            if shutil.which("fish"):
                for line, cwd, want in [
                    ("vigil st", elsewhere, {"status", "start", "stop"}),
                    ("vigil status -c %s " % cfg, elsewhere, {"alpha", "beta-2"}),
                    ("vigil restart -c %s " % cfg, elsewhere, {"all", "alpha", "beta-2"}),
                    ("vigil logs ", run_dir, {"alpha", "beta-2"}),
                ]:
                    expect("fish", line, fish_complete(source, line, cwd, env), want, exact=False)
            else:
                print("fish is not installed: its completion is not checked")
        finally:
            code = v.stop()
        if code != 0:
            failures.append("vigil exited %d on SIGTERM" % code)

        for shell, args in (("zsh", ["-n"]), ("fish", ["--no-execute"]), ("bash", ["-n"])):
            path = os.path.join(source, "completions",
                                {"zsh": "_vigil", "fish": "vigil.fish", "bash": "vigil.bash"}[shell])
            if not shutil.which(shell):
                print("%s is not installed: %s is not syntax-checked" % (shell, path))
                continue
            r = subprocess.run([shell, *args, path], capture_output=True, text=True, timeout=30)
            if r.returncode != 0 or r.stderr:
                failures.append("%s %s %s:\n%s" % (shell, " ".join(args), path, r.stderr))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(elsewhere, ignore_errors=True)
    if failures:
        sys.exit("\n".join(failures))
    print("completion: bash, zsh and fish complete commands, options and the running vigil's programs")


if __name__ == "__main__":
    main()
