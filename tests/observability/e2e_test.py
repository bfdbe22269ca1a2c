#!/usr/bin/env python3
"""End-to-end: a real vigil scraped by a real Prometheus that loads the shipped rules.

usage: e2e_test.py VIGIL_BINARY

Builds nothing. Starts a small HTTP server (python3 -m http.server), then
the given vigil binary with a temporary config: one crash-looping program,
one program that sends READY, heartbeats and MEMORY on fd 3, one whose probe
asks the HTTP server (passes), one whose probe is refused, a watch of the
HTTP server (up) and a watch of a port nothing listens on (down; its
on_failure has a command that works and one that fails). The server answers
before vigil starts, so the healthy probe and watch never see a failure.
And a program of 2 instances that becomes ready (READY on fd 3) only while a
gate file exists: with the gate removed, a rolling restart asked for on the
control socket waits at its first replacement for as long as the test wants.
And a Prometheus (1 s scrape and rule evaluation) loading
deploy/prometheus/vigil-rules.yml, each on a free loopback port with its own
temporary directory. Then, through Prometheus's HTTP API, checks that:

  - vigil's /metrics passes `promtool check metrics`;
  - vigil_restarts_total of the crash-looping program increases;
  - the `vigil` rule group is loaded and every rule evaluates with health "ok";
  - VigilRestartStorm becomes pending (or firing) for the crash-looping
    program, VigilProbeFailing for the refused probe, VigilWatchDown and
    VigilWatchActionFailing for the failing watch, and none of them for the
    healthy program, probe or watch;
  - every PromQL expression of dashboards/vigil-overview.json (panels, rows,
    annotations; template variables substituted as Grafana would) runs
    without error, and the core panels (those whose series the test config
    produces) return data;
  - every template variable's label_values() query finds values;
  - a rolling restart (POST /api/v1/programs/NAME/restart on the control
    socket) shows: vigil_rollout_in_progress 1 while the gated replacement
    waits, and the dashboard's "Rolling restarts now" stat counts it; a
    second restart cancels it (vigil_rollouts_total{result="failed"} 1,
    VigilRollingRestartFailed fires for that program and no other); with the
    gate back the roll completes (result="completed" 1). Its restarts are
    all `manual`: the automatic-restart series the storm alert and panels
    use stay at 0, and VigilRestartStorm stays away from that program.

Waits are polls against deadlines, never sleeps as synchronisation. Every
process started here is killed, and the temp dir removed, on any exit
(children also get PR_SET_PDEATHSIG, so even a SIGKILLed test leaves none).
Python 3 standard library only.
"""
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import http.client
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, "deploy", "prometheus", "vigil-rules.yml")
DASHBOARD = os.path.join(ROOT, "dashboards", "vigil-overview.json")

# Panels that must show data for a running vigil (by title). The others
# (sticky connections, drops, ...) are only checked for errors: the test
# config has no sticky listener, and nothing is dropped.
CORE_PANELS = {
    "Programs",
    "State over time",
    "Restarts by reason",
    "Automatic restarts in the last 15 minutes",
    "Heartbeat age vs interval",
    "Memory: measured vs reported vs limit",
    "Probe success",
    "Probe latency",
    "Probe failures by kind",
    "Failed share of probes (15 minutes)",
    "Watches",
    "Watch failures",
    "Watch actions by result",
    "Rolling restarts now",
    "Failed rolling restarts (30m)",
    "Rolling restarts",
    "Rolling restarts by result",
}

JOB = "vigil"
CRASH = "crash"
BEAT = "beat"
WEB = "web"      # its probe asks the test's HTTP server: passes
SICK = "sick"    # its probe asks a port nothing listens on: refused
SVC = "svc"      # watch of the test's HTTP server: up
DEAD = "dead"    # watch of a port nothing listens on: down, on_failure ok + failed
ROLL = "roll"    # 2 instances, ready only while the gate file exists: rolling restarts
OVERALL_DEADLINE = 50.0  # seconds; ctest's limit is 60 s

_started = time.monotonic()
_procs = []
_tmp = None


def log(msg):
    print(f"[{time.monotonic() - _started:5.1f}s] {msg}", flush=True)


class Failure(Exception):
    pass


def fail(msg):
    raise Failure(msg)


def remaining():
    return OVERALL_DEADLINE - (time.monotonic() - _started)


def poll(what, fn, timeout):
    """Calls fn() until it returns a truthy value; fails after `timeout` seconds."""
    deadline = time.monotonic() + min(timeout, max(remaining(), 1.0))
    last_err = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except (OSError, ValueError, KeyError, urllib.error.URLError) as e:
            last_err = e
        if time.monotonic() >= deadline:
            fail(f"timed out waiting for {what}" + (f" (last error: {last_err})" if last_err else ""))
        time.sleep(0.2)


# ---------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def start(name, argv, logfile):
    out = open(logfile, "wb")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         preexec_fn=_child_setup, start_new_session=True)
    out.close()
    _procs.append((name, p, logfile))
    log(f"started {name} (pid {p.pid})")
    return p


def cleanup():
    for name, p, _ in reversed(_procs):
        if p.poll() is None:
            p.terminate()
    for name, p, _ in reversed(_procs):
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    _procs.clear()
    if _tmp and os.path.isdir(_tmp):
        shutil.rmtree(_tmp, ignore_errors=True)


def on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


def dump_logs():
    for name, p, logfile in _procs:
        try:
            with open(logfile, "rb") as f:
                data = f.read()[-4000:].decode(errors="replace")
        except OSError:
            continue
        print(f"---- {name} (exit {p.poll()}) last output ----\n{data}", file=sys.stderr)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------- HTTP

def http_get(url, timeout=3.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers, r.read()


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over vigil's control socket (actions need no token there)."""

    def __init__(self, path, timeout=5.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def control_post(sock_path, path):
    conn = UnixHTTPConnection(sock_path)
    try:
        conn.request("POST", path, headers={"Content-Length": "0"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class Prom:
    def __init__(self, base):
        self.base = base

    def api(self, path, **params):
        url = f"{self.base}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            _, _, body = http_get(url, timeout=5.0)
        except urllib.error.HTTPError as e:  # 400/422: bad query, body has the error
            body = e.read()
        doc = json.loads(body)
        return doc

    def query(self, expr):
        return self.api("/api/v1/query", query=expr, time=f"{time.time():.3f}")

    def query_range(self, expr, seconds=30, step="1s"):
        end = time.time()
        return self.api("/api/v1/query_range", query=expr, start=f"{end - seconds:.3f}",
                        end=f"{end:.3f}", step=step)


def scalar_sum(doc):
    if doc.get("status") != "success":
        fail(f"query failed: {doc}")
    return sum(float(s["value"][1]) for s in doc["data"]["result"])


# -------------------------------------------------------------- dashboard

def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def grafana_regex(values):
    """A multi-value variable as Grafana's Prometheus data source formats it."""
    esc = [re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\\\1", v) for v in values]
    return esc[0] if len(esc) == 1 else "(" + "|".join(esc) + ")"


def substitute(expr, variables):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in variables:
            fail(f"unknown template variable ${name} in: {expr}")
        return variables[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", repl, expr)


def panel_expr(title, variables):
    """The (only) expression of the dashboard panel `title`, as Grafana would send it."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in walk_panels(dash["panels"]) if p["title"] == title
             for t in p.get("targets", []) if t.get("expr")]
    if len(exprs) != 1:
        fail(f"dashboard: want one expression in panel {title!r}, found {len(exprs)}")
    return substitute(exprs[0], variables)


def check_dashboard(prom, variables):
    with open(DASHBOARD) as f:
        dash = json.load(f)
    if dash.get("schemaVersion") != 39:
        fail(f"dashboard schemaVersion is {dash.get('schemaVersion')}, want 39")
    if [i["name"] for i in dash.get("__inputs", [])] != ["DS_PROMETHEUS"]:
        fail("dashboard __inputs must be exactly DS_PROMETHEUS")
    # Structure Grafana relies on: unique panel ids, unique refIds per panel,
    # every query on the DS_PROMETHEUS data source.
    ids = [p["id"] for p in walk_panels(dash["panels"])]
    if len(ids) != len(set(ids)):
        fail("dashboard panel ids are not unique")
    for p in walk_panels(dash["panels"]):
        refids = [t["refId"] for t in p.get("targets", [])]
        if len(refids) != len(set(refids)):
            fail(f"panel {p['title']!r}: duplicate refId")
        for obj in [p] + p.get("targets", []):
            if p["type"] != "row" and obj.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
                fail(f"panel {p['title']!r}: data source is not ${{DS_PROMETHEUS}}")

    # Template variables: label_values(selector, label) through the labels API.
    names = {v["name"] for v in dash["templating"]["list"]}
    for want in ("DS_PROMETHEUS", "job", "instance", "program"):
        if want not in names:
            fail(f"dashboard has no template variable {want}")
    for v in dash["templating"]["list"]:
        if v["type"] != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q)
        if not m:
            fail(f"variable {v['name']}: unsupported query {q!r}")
        sel, label = substitute(m.group(1), variables), m.group(2)
        doc = prom.api(f"/api/v1/label/{label}/values", **{"match[]": sel})
        if doc.get("status") != "success" or not doc["data"]:
            fail(f"variable {v['name']}: {q} -> {sel} found no values: {doc}")
        log(f"variable ${v['name']}: {doc['data']}")

    checks = []  # (where, expr, instant, core)
    for p in walk_panels(dash["panels"]):
        for t in p.get("targets", []):
            if t.get("expr"):
                instant = bool(t.get("instant")) and not t.get("range")
                checks.append((f"panel {p['title']!r} {t['refId']}", t["expr"], instant,
                               p["title"] in CORE_PANELS))
    for a in dash["annotations"]["list"]:
        if a.get("expr"):
            checks.append((f"annotation {a['name']!r}", a["expr"], False, False))
    titles = {p["title"] for p in walk_panels(dash["panels"])}
    missing = CORE_PANELS - titles
    if missing:
        fail(f"core panels missing from the dashboard: {sorted(missing)}")

    errors = []
    empty_core = []
    for where, expr, instant, core in checks:
        q = substitute(expr, variables)

        def run():
            return prom.query(q) if instant else prom.query_range(q)

        doc = run()
        if doc.get("status") != "success":
            errors.append(f"{where}: {doc.get('errorType')}: {doc.get('error')}\n    {q}")
            continue
        if doc.get("warnings"):
            errors.append(f"{where}: warnings {doc['warnings']}\n    {q}")
        if core and not doc["data"]["result"]:
            try:
                poll(f"data for {where}", lambda: run()["data"]["result"], timeout=10)
            except Failure:
                empty_core.append(f"{where}: no data\n    {q}")
    log(f"dashboard: {len(checks)} expressions run, "
        f"{sum(1 for c in checks if c[3])} of them in core panels")
    if errors or empty_core:
        fail("dashboard queries:\n  " + "\n  ".join(errors + empty_core))


# --------------------------------------------------------------------- main

def main():
    global _tmp
    if len(sys.argv) != 2:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    vigil = os.path.abspath(sys.argv[1])
    if not os.access(vigil, os.X_OK):
        print(f"not an executable: {vigil}", file=sys.stderr)
        return 2
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            print(f"{tool} not found (Debian package prometheus; make deps)", file=sys.stderr)
            return 2

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _tmp = tempfile.mkdtemp(prefix="vigil-obs-e2e-")
    ports = set()
    while len(ports) < 5:  # vigil, Prometheus, the HTTP server, SICK's, DEAD's: all different
        ports.add(free_port())
    vigil_port, prom_port, http_port, sick_port, dead_port = ports
    target = f"127.0.0.1:{vigil_port}"
    os.mkdir(os.path.join(_tmp, "www"))
    with open(os.path.join(_tmp, "www", "health"), "w") as f:
        f.write("ok\n")
    gate = os.path.join(_tmp, "gate")
    open(gate, "w").close()

    with open(os.path.join(_tmp, "vigil.toml"), "w") as f:
        f.write(f"""\
[vigil]
log_dir = "logs"
control_socket = "vigil.sock"
sample_interval = "500ms"

[http]
listen = "{target}"

# Crashes 0.3 s after each start, restarted after 100 ms, forever.
[programs.{CRASH}]
command = "sleep 0.3; exit 1"
restart_delay = "100ms"
restart_delay_max = "100ms"
restart_window = "0s"

# Healthy: READY, heartbeats and MEMORY on fd 3.
[programs.{BEAT}]
command = "echo READY=1 >&3; while :; do echo WATCHDOG=1 >&3; echo MEMORY=2097152 >&3; sleep 0.2; done"
ready = "notify"
start_timeout = "10s"
memory_limit = "256MiB"

[programs.{BEAT}.heartbeat]
interval = "1s"
misses = 3
grace = "5s"

# Ready once its probe passes; the probe asks the test's HTTP server.
[programs.{WEB}]
command = "exec sleep 1000"
ready = "probe"
start_timeout = "20s"

[programs.{WEB}.probe]
http = "http://127.0.0.1:{http_port}/health"
expect_body = "ok"
interval = "500ms"
timeout = "2s"
initial_delay = "0s"

# Ready (READY on fd 3) only while the gate file exists. start_timeout
# outlasts the test: a replacement waits at the gate as long as needed.
[programs.{ROLL}]
command = "while [ ! -e '{gate}' ]; do sleep 0.1; done; echo READY=1 >&3; exec sleep 1000"
instances = 2
ready = "notify"
start_timeout = "120s"

# Runs, and nothing listens on its port: every probe is refused. With
# failures = 1000 vigil does not restart it within the test.
[programs.{SICK}]
command = "exec sleep 1000"
port_base = {sick_port}

[programs.{SICK}.probe]
tcp = "127.0.0.1:{{port}}"
interval = "200ms"
timeout = "1s"
failures = 1000
initial_delay = "0s"

[watch.{SVC}]
http = "http://127.0.0.1:{http_port}/health"
expect_body = "ok"
interval = "500ms"

# Down from the first check; acts at once and after each 500 ms cool-down:
# `true` ends ok, `false` failed.
[watch.{DEAD}]
tcp = "127.0.0.1:{dead_port}"
interval = "500ms"
failures = 1
on_failure = [["true"], ["false"]]
action_timeout = "5s"
""")
    with open(os.path.join(_tmp, "prometheus.yml"), "w") as f:
        f.write(f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES}
scrape_configs:
  - job_name: {JOB}
    static_configs:
      - targets: ['{target}']
""")

    try:
        start("http server", [sys.executable, "-m", "http.server", str(http_port), "--bind", "127.0.0.1",
                              "--directory", os.path.join(_tmp, "www")], os.path.join(_tmp, "http.out"))
        poll("the HTTP server", lambda: http_get(f"http://127.0.0.1:{http_port}/health")[2] == b"ok\n", 10)
        start("vigil", [vigil, "run", "-c", os.path.join(_tmp, "vigil.toml")], os.path.join(_tmp, "vigil.out"))
        start("prometheus", ["prometheus", f"--config.file={_tmp}/prometheus.yml",
                             f"--storage.tsdb.path={_tmp}/tsdb", f"--web.listen-address=127.0.0.1:{prom_port}",
                             "--log.level=warn"], os.path.join(_tmp, "prometheus.out"))

        def alive():
            for name, p, _ in _procs:
                if p.poll() is not None:
                    fail(f"{name} exited with {p.returncode}")
            return True

        metrics_url = f"http://{target}/metrics"
        poll("vigil /healthz", lambda: alive() and http_get(f"http://{target}/healthz")[0] == 200, 10)
        log("vigil answers")

        # The exposition passes promtool's linter and has the contract's content type.
        status, headers, body = http_get(metrics_url)
        ctype = headers.get("Content-Type", "")
        if not ctype.startswith("text/plain; version=0.0.4"):
            fail(f"/metrics Content-Type is {ctype!r}")
        r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
        if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
            fail(f"promtool check metrics (exit {r.returncode}):\n{r.stdout.decode()}{r.stderr.decode()}")
        log("promtool check metrics: clean")

        prom = Prom(f"http://127.0.0.1:{prom_port}")
        poll("Prometheus ready", lambda: alive() and http_get(f"{prom.base}/-/ready")[0] == 200, 20)
        log("Prometheus ready")

        # The scrape works and the crash-looping program's restarts increase.
        restarts = f'sum(vigil_restarts_total{{job="{JOB}",program="{CRASH}",reason="exit"}})'
        poll("up == 1", lambda: scalar_sum(prom.query(f'up{{job="{JOB}"}}')) == 1, 10)
        first = poll("vigil_restarts_total > 0", lambda: scalar_sum(prom.query(restarts)), 15)
        later = poll(f"vigil_restarts_total > {first:g}",
                     lambda: (lambda v: v if v > first else 0)(scalar_sum(prom.query(restarts))), 15)
        log(f"vigil_restarts_total{{program={CRASH!r}}}: {first:g} -> {later:g}")

        # The shipped rule group is loaded and every rule evaluates cleanly.
        with open(RULES) as f:
            want_rules = len(re.findall(r"^\s*- (?:alert|record):", f.read(), re.M))

        def rules_ok():
            doc = prom.api("/api/v1/rules")
            groups = [g for g in doc["data"]["groups"] if g["name"] == "vigil"]
            if len(groups) != 1:
                fail(f"rule group 'vigil' not loaded: {[g['name'] for g in doc['data']['groups']]}")
            rules = groups[0]["rules"]
            if len(rules) != want_rules:
                fail(f"rule group has {len(rules)} rules, the file {want_rules}")
            bad = [r for r in rules if r.get("lastError")]
            if bad:
                fail("rules with errors: " + "; ".join(f"{r['name']}: {r['lastError']}" for r in bad))
            return all(r["health"] == "ok" for r in rules)
        poll("every rule healthy", rules_ok, 15)
        log(f"rule group 'vigil': {want_rules} rules, all health ok")

        # The alerts see the real series: pending (or firing) for the
        # failing program, probe or watch, never for the healthy one. Their
        # `for` keeps most of them pending here; VigilWatchActionFailing has
        # none and fires.
        def expect_alert(name, label, bad, good, states=("pending", "firing")):
            def check():
                alerts = [a for a in prom.api("/api/v1/alerts")["data"]["alerts"]
                          if a["labels"]["alertname"] == name]
                if any(a["labels"].get(label) == good for a in alerts):
                    fail(f"{name} for the healthy {label} {good}: {alerts}")
                return [a for a in alerts if a["labels"].get(label) == bad
                        and a["labels"].get("instance") == target
                        and a["labels"].get("job") == JOB and a["state"] in states]
            a = poll(f"{name} {'/'.join(states)} for {label} {bad}", check, 20)[0]
            log(f"{name} {a['state']} for {bad}: {a['annotations']['summary']}")
            return a

        a = expect_alert("VigilRestartStorm", "program", CRASH, BEAT)
        if a["labels"].get("index") != "0":
            fail(f"VigilRestartStorm without index 0: {a['labels']}")
        expect_alert("VigilProbeFailing", "program", SICK, WEB)
        expect_alert("VigilWatchDown", "watch", DEAD, SVC)
        expect_alert("VigilWatchActionFailing", "watch", DEAD, SVC, states=("firing",))

        # What Grafana substitutes in the dashboard's expressions.
        variables = {
            "job": JOB,
            "instance": grafana_regex([target]),
            "program": grafana_regex(sorted([BEAT, CRASH, ROLL, SICK, WEB])),
            "__rate_interval": "4s",
            "__interval": "1s",
            "__range": "60s",
        }

        # A rolling restart, held at its first replacement by the gate.
        sock = os.path.join(_tmp, "vigil.sock")
        sel = f'job="{JOB}",program="{ROLL}"'

        def value(expr):
            return scalar_sum(prom.query(expr))

        def roll_api():
            status, _, body = http_get(f"http://{target}/api/v1/programs/{ROLL}")
            return [i["rollout"] for i in json.loads(body)]

        poll(f"both instances of {ROLL} up", lambda: value(f"vigil_up{{{sel}}}") == 2, 15)
        for result in ("completed", "failed"):  # from the program's creation, at 0
            doc = prom.query(f'vigil_rollouts_total{{{sel},result="{result}"}}')
            if [float(x["value"][1]) for x in doc["data"]["result"]] != [0.0]:
                fail(f"vigil_rollouts_total{{result={result!r}}} of {ROLL} is not one series at 0: {doc}")
        os.unlink(gate)
        status, body = control_post(sock, f"/api/v1/programs/{ROLL}/restart")
        if status != 200:
            fail(f"POST restart {ROLL}: {status} {body!r}")
        poll("vigil_rollout_in_progress 1", lambda: value(f"vigil_rollout_in_progress{{{sel}}}") == 1, 10)
        rolling_now = panel_expr("Rolling restarts now", variables)
        poll("the 'Rolling restarts now' stat at 1", lambda: value(rolling_now) == 1, 10)
        first = roll_api()[0]
        if not (first and first["in_progress"] and first["done"] == 0 and first["total"] == 2
                and first["current"] == 0):
            fail(f"API rollout while the first replacement waits: {first}")
        log(f"rolling restart of {ROLL} in progress: {first}")

        # Another restart cancels it (failed) and rolls again.
        status, body = control_post(sock, f"/api/v1/programs/{ROLL}/restart")
        if status != 200:
            fail(f"POST restart {ROLL} (again): {status} {body!r}")
        poll("vigil_rollouts_total{result=\"failed\"} 1",
             lambda: value(f'vigil_rollouts_total{{{sel},result="failed"}}') == 1, 10)
        failed_stat = panel_expr("Failed rolling restarts (30m)", variables)
        poll("the 'Failed rolling restarts (30m)' stat at 1", lambda: value(failed_stat) == 1, 10)
        expect_alert("VigilRollingRestartFailed", "program", ROLL, BEAT, states=("firing",))
        others = [a["labels"] for a in prom.api("/api/v1/alerts")["data"]["alerts"]
                  if a["labels"]["alertname"] == "VigilRollingRestartFailed"
                  and a["labels"].get("program") != ROLL]
        if others:
            fail(f"VigilRollingRestartFailed for programs that did not roll: {others}")

        # With the gate back, the second roll completes.
        open(gate, "w").close()
        poll("vigil_rollouts_total{result=\"completed\"} 1",
             lambda: value(f'vigil_rollouts_total{{{sel},result="completed"}}') == 1, 15)
        poll("vigil_rollout_in_progress 0", lambda: not prom.query(
            f"vigil_rollout_in_progress{{{sel}}} == 1")["data"]["result"], 10)
        last = roll_api()[0]
        if last["in_progress"] or last["done"] != 2 or last["error"] or last["id"] != first["id"] + 1:
            fail(f"API rollout after the second roll completed: {last}")
        log(f"rolling restart of {ROLL} completed: {last}")

        # Every restart the rolls made is manual: the series the storm alert
        # and the automatic-restart panels use do not see them.
        manual = value(f'vigil_restarts_total{{{sel},reason="manual"}}')
        if manual < 2:
            fail(f"{ROLL}: {manual:g} manual restarts, want one per replaced instance at least")
        automatic = prom.query(f'vigil:restarts:increase15m{{{sel},reason!="manual"}} > 0')
        if automatic["data"]["result"]:
            fail(f"{ROLL}: automatic restarts counted for a rolling restart: {automatic}")
        storm = [a for a in prom.api("/api/v1/alerts")["data"]["alerts"]
                 if a["labels"]["alertname"] == "VigilRestartStorm" and a["labels"].get("program") == ROLL]
        if storm:
            fail(f"VigilRestartStorm for a rolling restart: {storm}")
        log(f"{ROLL}: {manual:g} manual restarts, no automatic one, no storm")

        # Every dashboard expression, with the variables Grafana would substitute.
        check_dashboard(prom, variables)

        # Nothing silently died along the way.
        alive()
        log("PASS")
        return 0
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        dump_logs()
        return 1
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
