#!/usr/bin/env python3
"""The rendered vigil(1) and vigil.toml(5): groff and man render them
without a warning, vigil(1) has a section for every command `vigil help`
lists, and vigil.toml(5) documents exactly the keys src/core/config_parse.cpp
accepts, table by table.

    man_test.py BUILD_DIR SOURCE_DIR VIGIL
"""
import os
import re
import subprocess
import sys
import tomllib

# config_parse.cpp's key tables and the man page section documenting each.
TABLES = {
    "kVigilKeys": "[vigil]",
    "kHttpKeys": "[http]",
    "kProgramKeys": "[programs.NAME]",
    "kHeartbeatKeys": "[programs.NAME.heartbeat]",
    "kProbeKeys": "[programs.NAME.probe]",
    "kStickyKeys": "[programs.NAME.sticky]",
    "kWatchKeys": "[watch.NAME]",
}


def main():
    build, source, vigil = sys.argv[1:4]
    pages = [os.path.join(build, "man", p) for p in ("vigil.1", "vigil.toml.5")]
    failures = []
    for page in pages:
        assert os.path.isfile(page), page + " was not built (the man target)"
        r = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0 or r.stderr:
            failures.append("groff -ww %s:\n%s" % (page, r.stderr))
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
        r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                           timeout=60, env=env)
        if r.returncode != 0 or r.stderr:
            failures.append("man --warnings -l %s:\n%s" % (page, r.stderr))
        if "NAME" not in r.stdout or "SEE ALSO" not in r.stdout:
            failures.append("man -l %s: no NAME or SEE ALSO section:\n%s" % (page, r.stdout[:500]))

    # Every command of `vigil help` has its section in vigil(1).
    help_text = subprocess.run([vigil, "help"], capture_output=True, text=True, timeout=30).stdout
    verbs = set()
    for l in help_text.splitlines():
        m = re.match(r"^\s{1,4}vigil\s+(\S+)", l)
        if m:
            verbs.update(m.group(1).split("|"))
    with open(pages[0]) as f:
        sections = set(re.findall(r"^\.SS (\S+)$", f.read(), re.M))
    if not verbs or verbs - sections:
        failures.append("vigil.1 lacks commands %s" % sorted(verbs - sections))

    # vigil.toml(5) and the parser agree on the keys.
    with open(os.path.join(source, "src/core/config_parse.cpp")) as f:
        code = f.read()
    with open(os.path.join(source, "doc/man.toml"), "rb") as f:
        doc = {s["name"]: [k[0] for k in s["keys"]] for s in tomllib.load(f)["config"]["section"]}
    found = 0
    for m in re.finditer(r"KeyHandler<\w+> (k\w+Keys)\[\] = \{(.*?)\n\};", code, re.S):
        table = m.group(1)
        if table not in TABLES:
            failures.append("config_parse.cpp has a key table %s that man_test.py does not map" % table)
            continue
        found += 1
        keys = set(re.findall(r'^\s*\{"(\w+)",', m.group(2), re.M))
        documented = set(doc.get(TABLES[table], []))
        if keys - documented:
            failures.append("doc/man.toml %s lacks keys %s" % (TABLES[table], sorted(keys - documented)))
        if documented - keys:
            failures.append("doc/man.toml %s documents keys the parser does not know: %s"
                            % (TABLES[table], sorted(documented - keys)))
    if found != len(TABLES):
        failures.append("found %d of the %d key tables in config_parse.cpp" % (found, len(TABLES)))

    if failures:
        sys.exit("\n".join(failures))
    print("man: both pages render without warnings; %d commands and every config key documented"
          % len(verbs))


if __name__ == "__main__":
    main()
