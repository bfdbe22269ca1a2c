#!/usr/bin/env python3
"""The monitoring kit tells one story per problem: its links lead somewhere,
and what shows nothing without a feature configured says so.

- Every alert's runbook_url (deploy/prometheus/vigil-rules.yml) is
  https://github.com/vigil/vigil/blob/main/PATH#ANCHOR where PATH is a file
  of this repository and ANCHOR one of its headings (GitHub's anchors); the
  same for every link of the dashboard that points into the repository.
- Alerts that need probes, watches or the sticky proxy (their expression
  reads vigil_probe_*, restarts with reason "probe", vigil_watch_* or
  vigil_sticky_*) have a **Needs:** line naming the config table in their
  deploy/RUNBOOK.md section, and the runbook's table of such alerts lists
  them. Dashboard panels reading those series start their description with
  "Needs a [table]" and sit in a row whose title names the table.

usage: check_kit_links.py
"""
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPO_URL = "https://github.com/vigil/vigil/blob/main/"
problems = []

# feature -> (what its series look like, the config table that enables it)
FEATURES = {
    "probe": (r"vigil_probe_|reason=\"probe\"", "[programs.NAME.probe]", "[programs.X.probe]"),
    "watch": (r"vigil_watch_", "[watch.NAME]", "[watch.X]"),
    "sticky": (r"vigil_sticky_", "[programs.NAME.sticky]", "[programs.X.sticky]"),
}


def anchors_of(rel):
    """GitHub's heading anchors of a markdown file (lower case, punctuation
    dropped, spaces to dashes; repeats get -1, -2, ...)."""
    seen, out = {}, set()
    in_code = False
    for line in open(os.path.join(ROOT, rel)):
        if line.startswith("```"):
            in_code = not in_code
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m and not in_code:
            a = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            n = seen.get(a, 0)
            seen[a] = n + 1
            out.add(a if n == 0 else f"{a}-{n}")
    return out


def check_repo_link(where, url):
    if not url.startswith(REPO_URL):
        problems.append(f"{where}: {url} is not a link into this repository ({REPO_URL}...)")
        return
    rel, _, anchor = url[len(REPO_URL):].partition("#")
    if not os.path.isfile(os.path.join(ROOT, rel)):
        problems.append(f"{where}: {url}: no file {rel} in the repository")
        return
    if anchor and anchor not in anchors_of(rel):
        problems.append(f"{where}: {url}: {rel} has no heading with anchor #{anchor}")


def feature_of(expr):
    return [f for f, (pat, _, _) in FEATURES.items() if re.search(pat, expr)]


def runbook_sections():
    text = open(os.path.join(ROOT, "deploy", "RUNBOOK.md")).read()
    parts = re.split(r"^## (\S+)\s*$", text, flags=re.M)
    return parts[0], dict(zip(parts[1::2], parts[2::2]))


def main():
    rules = yaml.safe_load(open(os.path.join(ROOT, "deploy", "prometheus", "vigil-rules.yml")))
    intro, sections = runbook_sections()
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    needing = 0
    for r in alerts:
        name = r["alert"]
        url = r.get("annotations", {}).get("runbook_url")
        if not url:
            problems.append(f"{name}: no runbook_url")
        else:
            check_repo_link(name, url)
        for f in feature_of(r["expr"]):
            needing += 1
            table = FEATURES[f][1]
            body = sections.get(name, "")
            needs = re.search(r"^\*\*Needs:\*\*(.*?)(?:\n\n|\Z)", body, re.M | re.S)
            if not needs or table not in needs.group(1):
                problems.append(f"{name}: its deploy/RUNBOOK.md section has no "
                                f"'**Needs:** ... `{table}`' line")
            if not re.search(r"^\|.*`" + name + r"`.*" + re.escape(table), intro, re.M):
                problems.append(f"{name}: the runbook's table of alerts that need "
                                f"something configured does not list it with {table}")
    print(f"  {len(alerts)} alerts: runbook_url files and anchors exist; "
          f"{needing} need probes, watches or sticky and say so in the runbook")

    dash = json.load(open(os.path.join(ROOT, "dashboards", "vigil-overview.json")))
    links = [(f"dashboard link {l.get('title')!r}", l["url"]) for l in dash.get("links", [])
             if l.get("url", "").startswith("https://github.com/vigil/")]
    marked = 0

    def walk(panels, row_title):
        nonlocal marked
        for p in panels:
            for l in p.get("links", []):
                if l.get("url", "").startswith("https://github.com/vigil/"):
                    links.append((f"panel {p.get('title')!r} link", l["url"]))
            if p.get("type") == "row":
                walk(p.get("panels", []), p.get("title", ""))
                continue
            exprs = " ".join(t.get("expr", "") for t in p.get("targets", []))
            for f in feature_of(exprs):
                marked += 1
                _, table, short = FEATURES[f]
                desc = p.get("description", "")
                if not desc.startswith("Needs a " + table):
                    problems.append(f"panel {p.get('title')!r}: reads {f} series; its "
                                    f"description must start with 'Needs a {table}'")
                if short not in (row_title or "") and table not in (row_title or ""):
                    problems.append(f"panel {p.get('title')!r}: reads {f} series; its row "
                                    f"{row_title!r} does not name {short}")

    walk(dash["panels"], None)
    for where, url in links:
        check_repo_link(where, url)
    print(f"  dashboard: {marked} panels need probes, watches or sticky and say so; "
          f"{len(links)} links into the repository resolve")
    if problems:
        print("\n".join("  FAIL: " + p for p in problems))
        sys.exit(1)
    print("kit links and needs: PASS")


if __name__ == "__main__":
    main()
