#!/usr/bin/env bash
# Checks the files of deploy/ with the tools that consume them, offline:
#   - deploy/systemd/vigil.service: `systemd-analyze verify` on a copy whose
#     /usr/local/bin/vigil is the vigil binary given as $1 (verify fails on a
#     missing executable), with any warning about the unit counted as an
#     error; without systemd-analyze, a syntax check. Then the choices the
#     unit must keep (Type=notify, watchdog, KillMode=mixed, ...), and that
#     the binary accepts the unit's ExecStartPre command line.
#   - deploy/prometheus/prometheus.yml: promtool check config (rules, file_sd).
#   - deploy/alertmanager/alertmanager.yml: amtool check-config, the
#     routing: critical -> pager, warning -> chat, and that every alert name
#     an inhibit rule matches is an alert of vigil-rules.yml.
#   - dashboards/vigil-overview.json: what Grafana's layout needs and no tool
#     checks offline: unique panel ids, every panel inside the 24 columns,
#     no two panels overlapping (top level, and within each collapsed row),
#     a collapsed row's panels below it.
#   - scripts/demo-stack.sh --check: the demo files derive from these.
# usage: check_deploy.sh VIGIL_BINARY
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 VIGIL_BINARY" >&2; exit 2; }
vigil="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
[ -x "$vigil" ] || { echo "check_deploy: not an executable: $1" >&2; exit 2; }
unit="$root/deploy/systemd/vigil.service"
fail() { echo "check_deploy: FAIL: $*" >&2; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/vigil-check-deploy.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "== systemd unit"
sed "s|/usr/local/bin/vigil|$vigil|g" "$unit" >"$tmp/vigil.service"
if command -v systemd-analyze >/dev/null; then
  set +e
  out="$(systemd-analyze verify --man=no "$tmp/vigil.service" 2>&1)"
  rc=$?
  set -e
  # Other units on the host may have their own warnings; ours must have none.
  mine="$(printf '%s\n' "$out" | grep -F 'vigil.service' || true)"
  if [ $rc -ne 0 ] || [ -n "$mine" ]; then
    printf '%s\n' "$out" >&2
    fail "systemd-analyze verify (exit $rc)"
  fi
  echo "  systemd-analyze verify: clean"
else
  python3 - "$unit" <<'EOF'
import re, sys
section, errors = None, []
for n, line in enumerate(open(sys.argv[1]), 1):
    s = line.strip()
    if not s or s[0] in "#;":
        continue
    if re.fullmatch(r"\[(Unit|Service|Install)\]", s):
        section = s
    elif section and re.fullmatch(r"[A-Za-z]+=.*", s):
        pass
    else:
        errors.append(f"{sys.argv[1]}:{n}: not a section header or Key=value: {s}")
if errors:
    sys.exit("\n".join(errors))
EOF
  echo "  systemd-analyze not available: syntax check only"
fi

want() {  # want REGEX WHY
  grep -Eq "^$1\$" "$unit" || fail "$unit: no line matching '$1' ($2)"
}
want 'Type=notify' "vigil sends READY=1"
want 'WatchdogSec=[0-9]+(s|min)?' "vigil sends WATCHDOG=1"
want 'ExecStart=/usr/local/bin/vigil run -c /etc/vigil/vigil.toml' "the documented path"
want 'ExecReload=/bin/kill -HUP \$MAINPID' "SIGHUP reloads"
want 'KillMode=mixed' "vigil stops its children itself; systemd SIGKILLs leftovers"
stop="$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")"
[ -n "$stop" ] && [ "$stop" -gt 10 ] || fail "TimeoutStopSec must be in seconds and above the default stop_timeout (10s)"
# The ExecStartPre command line must be one the binary accepts.
pre="$(sed -n 's|^ExecStartPre=/usr/local/bin/vigil ||p' "$unit")"
[ "$pre" = "check --strict -c /etc/vigil/vigil.toml" ] || fail "unexpected ExecStartPre: $pre"
# (Not --strict on the demo: its ports may be held by another test running
# the demo now; a warning is not a failure without --strict.)
"$vigil" check -c "$root/config/vigil.toml" >/dev/null || fail "'vigil check -c FILE' rejected the demo config"
printf '[programs.one]\ncommand = ["true"]\n' >"$tmp/strict.toml"
"$vigil" check --strict -c "$tmp/strict.toml" >/dev/null || fail "'vigil check --strict -c FILE' is refused"
echo "  unit choices and ExecStartPre: ok"

echo "== prometheus.yml"
command -v promtool >/dev/null || fail "promtool not found (Debian package prometheus)"
promtool check config "$root/deploy/prometheus/prometheus.yml"

echo "== alertmanager.yml"
command -v amtool >/dev/null || fail "amtool not found (Debian package prometheus-alertmanager)"
amtool check-config "$root/deploy/alertmanager/alertmanager.yml"
route() {  # route RECEIVER LABEL=VALUE...
  local want="$1"; shift
  amtool config routes test --config.file="$root/deploy/alertmanager/alertmanager.yml" \
    --verify.receivers="$want" "$@" >/dev/null 2>&1 || fail "alertmanager routes $* to another receiver than $want"
  echo "  $* -> $want"
}
route pager alertname=VigilRestartStorm severity=critical program=web index=0 instance=h:9321
route chat alertname=VigilProgramHung severity=warning program=web index=0 instance=h:9321
route pager alertname=VigilWatchActionFailing severity=critical watch=legacy instance=h:9321
route chat alertname=VigilProbeFlapping severity=warning program=web index=0 instance=h:9321
route chat alertname=VigilRollingRestartFailed severity=warning program=web instance=h:9321
route chat alertname=VigilRollingRestartStuck severity=warning program=web instance=h:9321
route pager alertname=VigilStickyRejecting severity=critical program=web instance=h:9321
route chat alertname=VigilStickyRouteFailures severity=warning program=web index=1 instance=h:9321
route chat alertname=SomethingElse
# An inhibit rule naming an alert that does not exist (a typo, a rename)
# silently inhibits nothing.
python3 - "$root/deploy/alertmanager/alertmanager.yml" "$root/deploy/prometheus/vigil-rules.yml" <<'EOF'
import re, sys
am, rules = (open(p).read() for p in sys.argv[1:])
alerts = set(re.findall(r"^\s*- alert:\s*(\S+)", rules, re.M))
named = set()
for m in re.finditer(r"alertname=~?\"([^\"]*)\"", am[am.index("inhibit_rules:"):]):
    named.update(m.group(1).split("|"))
unknown = sorted(named - alerts)
if unknown:
    sys.exit(f"check_deploy: FAIL: alertmanager.yml inhibit rules name alerts vigil-rules.yml lacks: {unknown}")
print(f"  inhibit rules: {len(named)} alert names, all in vigil-rules.yml")
EOF

echo "== dashboard layout"
python3 - "$root/dashboards/vigil-overview.json" <<'EOF'
import json, sys
path = sys.argv[1]
dash = json.load(open(path))
problems = []

def box(p):
    g = p.get("gridPos") or {}
    if not all(isinstance(g.get(k), int) for k in "xywh"):
        problems.append(f"panel {p.get('id')} {p.get('title')!r}: gridPos needs integer x, y, w, h")
        return None
    if g["x"] < 0 or g["y"] < 0 or g["w"] < 1 or g["h"] < 1 or g["x"] + g["w"] > 24:
        problems.append(f"panel {p.get('id')} {p.get('title')!r}: gridPos {g} outside the 24 columns")
    return g

def no_overlap(panels, where):
    boxes = [(p, g) for p in panels if (g := box(p))]
    for i, (a, ga) in enumerate(boxes):
        for b, gb in boxes[i + 1:]:
            if (ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"] and
                    ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"]):
                problems.append(f"{where}: panels {a.get('id')} {a.get('title')!r} and "
                                f"{b.get('id')} {b.get('title')!r} overlap")

ids = []
def collect(panels):
    for p in panels:
        ids.append(p.get("id"))
        collect(p.get("panels", []))
collect(dash["panels"])
dups = sorted({str(i) for i in ids if ids.count(i) > 1})
if dups or None in ids:
    problems.append(f"panel ids must be set and unique; repeated: {dups}")

# A collapsed row keeps its panels inside it, laid out as they will be when
# it is expanded (Grafana then pushes what follows down): they are checked
# against each other, not against the top level.
no_overlap(dash["panels"], "top level")
for row in dash["panels"]:
    if row.get("type") != "row":
        continue
    nested = row.get("panels", [])
    if nested and not row.get("collapsed"):
        problems.append(f"row {row.get('title')!r}: holds panels but is not collapsed")
    no_overlap(nested, f"row {row.get('title')!r}")
    for p in nested:
        if p.get("gridPos", {}).get("y", 0) <= row["gridPos"]["y"]:
            problems.append(f"row {row.get('title')!r}: panel {p.get('id')} {p.get('title')!r} "
                            "is not below the row")
if problems:
    sys.exit(f"check_deploy: FAIL: {path}:\n  " + "\n  ".join(problems))
print(f"  {len(ids)} panels: ids unique, inside the 24 columns, no overlaps")
EOF

echo "== demo stack files"
bash "$root/scripts/demo-stack.sh" --check

echo "deploy: PASS"
