#!/usr/bin/env bash
# Checks the files of deploy/ with the tools that consume them, offline:
#   - deploy/systemd/vigil.service: `systemd-analyze verify` on a copy whose
#     /usr/local/bin/vigil is the vigil binary given as $1 (verify fails on a
#     missing executable), with any warning about the unit counted as an
#     error; without systemd-analyze, a syntax check. Then the choices the
#     unit must keep (Type=notify, watchdog, KillMode=mixed, ...), and that
#     the binary accepts the unit's ExecStartPre command line.
#   - deploy/prometheus/prometheus.yml: promtool check config (rules, file_sd).
#   - deploy/alertmanager/alertmanager.yml: amtool check-config, and the
#     routing: critical -> pager, warning -> chat.
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
[ "$pre" = "check -c /etc/vigil/vigil.toml" ] || fail "unexpected ExecStartPre: $pre"
"$vigil" check -c "$root/config/vigil.toml" >/dev/null || fail "'vigil check -c FILE' rejected the demo config"
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
route chat alertname=SomethingElse

echo "== demo stack files"
bash "$root/scripts/demo-stack.sh" --check

echo "deploy: PASS"
