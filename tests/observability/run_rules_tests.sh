#!/usr/bin/env bash
# Checks and unit-tests deploy/prometheus/vigil-rules.yml:
#   1. promtool check rules      (syntax, PromQL, templates, duplicates)
#   2. promtool test rules       (deploy/prometheus/vigil-rules.test.yml)
#   3. conventions promtool does not know: every alert has a severity of
#      critical|warning, summary, description (naming the vigil target, and
#      the program and index, the program alone for the per-program
#      rolling-restart and sticky rejection alerts, or the watch) and a runbook_url whose anchor
#      is a section of deploy/RUNBOOK.md; every alert has a test where it
#      fires and one where it must stay silent.
# Exits non-zero on any failure. Needs promtool (Debian package prometheus).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$root/deploy/prometheus"

if ! command -v promtool >/dev/null; then
  echo "run_rules_tests: promtool not found (Debian package prometheus; make deps)" >&2
  exit 1
fi

echo "== promtool check rules"
promtool check rules "$dir/vigil-rules.yml"

echo "== promtool test rules"
# promtool resolves rule_files relative to the test file.
promtool test rules "$dir/vigil-rules.test.yml"

echo "== conventions"
python3 - "$dir/vigil-rules.yml" "$dir/vigil-rules.test.yml" "$root/deploy/RUNBOOK.md" <<'EOF'
import re
import sys

rules_path, tests_path, runbook_path = sys.argv[1:]
problems = []

# Split the rule file into one text block per alert (no YAML module in the
# standard library; the file's layout is regular enough).
rules = open(rules_path).read()
blocks = re.split(r"^\s*- (?=alert:|record:)", rules, flags=re.M)[1:]
alerts = {}
for b in blocks:
    m = re.match(r"alert:\s*(\S+)", b)
    if m:
        alerts[m.group(1)] = b

anchors = set()
for line in open(runbook_path):
    m = re.match(r"#+\s+(.*\S)", line)
    if m:  # GitHub's anchor: lower case, punctuation dropped, spaces to dashes
        anchors.add(re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-"))

for name, b in alerts.items():
    sev = re.search(r"^\s+severity:\s*(\S+)", b, re.M)
    if not sev or sev.group(1) not in ("critical", "warning"):
        problems.append(f"{name}: severity label must be critical or warning")
    for ann in ("summary", "description"):
        m = re.search(rf"^\s+{ann}:(.*(?:\n\s{{12,}}.*)*)", b, re.M)
        if not m:
            problems.append(f"{name}: no {ann} annotation")
            continue
        text = m.group(1)
        wanted = ["$labels.instance"]
        expr = re.search(r"^\s+expr:(.*?)^\s+(?:for|labels):", b, re.S | re.M)
        if expr and "vigil_watch_" in expr.group(1):  # per watch: its name, no program
            wanted += ["$labels.watch"]
        elif expr and re.search(r"vigil_rollout|vigil_sticky_rejected", expr.group(1)):
            wanted += ["$labels.program"]  # per program: no index
        elif name not in ("VigilConfigReloadFailed", "VigilTargetDown",
                          "VigilHttpConnectionsDropped"):
            wanted += ["$labels.program", "$labels.index"]
        for w in wanted:
            if w not in text:
                problems.append(f"{name}: {ann} does not name {w}")
    url = re.search(r"^\s+runbook_url:\s*(\S+)", b, re.M)
    want = f"https://github.com/vigil/vigil/blob/main/deploy/RUNBOOK.md#{name.lower()}"
    if not url or url.group(1) != want:
        problems.append(f"{name}: runbook_url must be {want}")
    if name.lower() not in anchors:
        problems.append(f"{name}: deploy/RUNBOOK.md has no section '## {name}'")

# Which alerts have a firing case and a silent case in the tests.
fires, silent = set(), set()
tests = open(tests_path).read()
for m in re.finditer(r"alertname:\s*(\S+)\s*\n\s*exp_alerts:(.*)", tests):
    (silent if m.group(2).strip() == "[]" else fires).add(m.group(1))
for name in alerts:
    if name not in fires:
        problems.append(f"{name}: no test where it fires")
    if name not in silent:
        problems.append(f"{name}: no test where it stays silent")
for name in (fires | silent) - set(alerts):
    problems.append(f"tests name an alert the rules do not have: {name}")

if problems:
    print("\n".join("  " + p for p in problems))
    sys.exit(1)
print(f"  {len(alerts)} alerts: severity, annotations, runbook sections and tests both ways: ok")
EOF
echo "rules: PASS"
