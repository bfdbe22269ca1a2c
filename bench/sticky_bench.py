#!/usr/bin/env python3
"""The sticky proxy's cost: wrk through vigil's [programs.X.sticky] listener
against the same through nginx's stream proxy (`hash $remote_addr
consistent`, the usual way to pin clients to backends), with a direct run to
one backend as the ceiling. Figures, not pass/fail: the exit status is
non-zero only when a run is broken (a tool missing, a server not starting,
wrk failing).

  python3 bench/sticky_bench.py [BUILD_DIR]           (make bench runs it)

The backends are 4 instances of a program vigil supervises, each an nginx
(one worker, access log off) answering every request with a fixed 200 on
127.0.0.1:port_base+i: the same 4 processes serve all three ways. wrk comes
from 127.0.0.1 only, so both proxies send every connection to one backend
(each picks its own by its hash); the direct run goes to one backend too.
nginx's stream proxy runs one worker, as vigil relays in its one thread.
Each way: wrk -t2 -c64 -d10s --latency, 3 runs taken in turns (direct,
nginx, vigil, direct, ...), the median of each figure;
two scenarios: keep-alive (64 long-lived connections: the relay's cost per
byte) and a new connection per request ("Connection: close": accept, hash,
connect and teardown per request), and bulk (keep-alive GETs of a 1 MiB
file: the cost of copying, where splice(2) should pay).

Environment:
  STICKY_BENCH_RUNS (3), STICKY_BENCH_SECONDS (10), STICKY_BENCH_CONNECTIONS (64),
  STICKY_BENCH_SCENARIOS ("keepalive,close,bulk")
  STICKY_BENCH_VARIANTS: vigil measured once per variant, each "LABEL" or
      "LABEL:VAR=VALUE,VAR=VALUE" (environment for vigil), separated by ";".
      The hook for the relay engine, e.g. "splice:VIGIL_STICKY_ENGINE=splice;
      buffer:VIGIL_STICKY_ENGINE=buffer" if vigil reads such a variable.
      Default: both copy engines, "vigil splice" (vigil's default) and
      "vigil buffers" (bufferevents); the summary names the faster one.
  BENCH_TMPDIR (/tmp), BENCH_KEEP=1 keeps the temp dir, BENCH_RESULTS (a
  file the summary rows are appended to, as bench/run.sh sets).
Until vigil has the sticky proxy (its config is refused), vigil's rows say
so and the direct and nginx figures are still measured.
"""

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTANCES = 4


def env_int(name, default):
    return int(os.environ.get(name, default))


RUNS = env_int("STICKY_BENCH_RUNS", 3)
# vigil's two copy engines, each measured (vigil reads VIGIL_STICKY_ENGINE).
DEFAULT_VARIANTS = "vigil splice:VIGIL_STICKY_ENGINE=splice;vigil buffers:VIGIL_STICKY_ENGINE=buffer"
SECONDS = env_int("STICKY_BENCH_SECONDS", 10)
CONNECTIONS = env_int("STICKY_BENCH_CONNECTIONS", 64)
SCENARIOS = [s for s in os.environ.get("STICKY_BENCH_SCENARIOS", "keepalive,close,bulk").split(",") if s]


class Broken(Exception):
    pass


def say(text):
    print(text, flush=True)


def result(figure, value):
    say(f"  => {figure:<44} {value}")
    path = os.environ.get("BENCH_RESULTS")
    if path:
        with open(path, "a") as f:
            f.write(f"{figure}\t{value}\t-\t\n")


def wait_for(what, pred, seconds):
    """Polls pred() every 50 ms; its first truthy value, or Broken."""
    end = time.monotonic() + seconds
    while True:
        try:
            v = pred()
        except (OSError, ValueError):
            v = None
        if v:
            return v
        if time.monotonic() > end:
            raise Broken(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(count, avoid):
    """`count` consecutive free ports on 127.0.0.1, none in `avoid`."""
    import random
    for _ in range(200):
        base = random.randint(20000, 50000)
        held = []
        try:
            for p in range(base, base + count):
                if p in avoid:
                    raise OSError
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            pass
        finally:
            for s in held:
                s.close()
    raise Broken(f"no {count} consecutive free ports")


def http_get(port, path="/", timeout=2):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status, r.read().decode()


def cpu_seconds(pids):
    """utime+stime of these processes, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / tick


def children(pid):
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


# ---------------------------------------------------------------------------
# wrk

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise Broken(f"wrk: cannot read the latency {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(port, scenario, proxy_pids):
    """One wrk run: {rps, p50_ms, p99_ms, errors, cpu}."""
    cmd = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency"]
    if scenario == "close":
        cmd += ["-H", "Connection: close"]
    cmd.append(f"http://127.0.0.1:{port}/big" if scenario == "bulk" else f"http://127.0.0.1:{port}/")
    cpu0 = cpu_seconds(proxy_pids)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 60)
    cpu = cpu_seconds(proxy_pids) - cpu0
    out = p.stdout
    if p.returncode != 0:
        raise Broken(f"wrk failed ({p.returncode}): {p.stderr}{out}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (rps and p50 and p99):
        raise Broken(f"wrk: unexpected output:\n{out}")
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        # A read error per request is how wrk counts the close of a
        # "Connection: close" reply on some versions: counted, not fatal.
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = int(m.group(1)) if m else 0
    requests = re.search(r"(\d+) requests in", out)
    return {"rps": float(rps.group(1)), "p50": parse_ms(p50.group(1)), "p99": parse_ms(p99.group(1)),
            "errors": errors, "non2xx": non2xx, "requests": int(requests.group(1)) if requests else 0,
            "cpu": cpu}


def run_round(samples, ways):
    """RUNS rounds per scenario, each running every way once in turn, so a
    change of the machine's load (it is shared) hits all ways alike."""
    for s in SCENARIOS:
        say(f"\n  == {s}")
        for i in range(RUNS):
            for label, port, pids in ways:
                r = wrk(port, s, pids)
                if r["non2xx"]:
                    raise Broken(f"{label}: {r['non2xx']} responses were not 2xx")
                samples[s].setdefault(label, []).append(r)
                say(f"  {label:<22} run {i + 1}: {r['rps']:>9.0f} req/s  p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms"
                    f"{'  socket errors ' + str(r['errors']) if r['errors'] else ''}")


def summarize(runs, has_pids):
    med = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99", "errors")}
    # Proxy CPU per 1,000 requests (milliseconds): what a request costs the proxy.
    total_req = sum(r["requests"] for r in runs)
    med["cpu_ms_per_k"] = (1e6 * sum(r["cpu"] for r in runs) / total_req) if has_pids and total_req else None
    return med


# ---------------------------------------------------------------------------
# the servers

def nginx_module_line():
    v = subprocess.run(["nginx", "-V"], capture_output=True, text=True).stderr
    if "--with-stream=dynamic" in v:
        for d in ("/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules"):
            so = os.path.join(d, "ngx_stream_module.so")
            if os.path.exists(so):
                return f"load_module {so};\n"
        raise Broken("nginx has the stream module only as a dynamic module, and it is not installed "
                     "(Debian: libnginx-mod-stream; scripts/deps.sh installs it)")
    if "--with-stream" in v:
        return ""
    raise Broken("nginx is built without the stream module")


def backend_conf(d, i, port):
    return f"""worker_processes 1;
daemon off;
pid {d}/backend{i}.pid;
error_log {d}/backend{i}-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path {d}/tmp{i}; proxy_temp_path {d}/tmp{i}; fastcgi_temp_path {d}/tmp{i};
  uwsgi_temp_path {d}/tmp{i}; scgi_temp_path {d}/tmp{i};
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    sendfile on;
    location / {{ return 200 "backend {i}\\n"; }}
    location = /big {{ alias {d}/big.bin; }}
  }}
}}
"""


def stream_conf(d, module, listen, base):
    servers = "".join(f"    server 127.0.0.1:{base + i};\n" for i in range(INSTANCES))
    return f"""{module}worker_processes 1;
daemon off;
pid {d}/stream.pid;
error_log {d}/stream-error.log;
events {{ worker_connections 4096; }}
stream {{
  upstream backends {{
    hash $remote_addr consistent;
{servers}  }}
  server {{
    listen 127.0.0.1:{listen} backlog=4096;
    proxy_pass backends;
  }}
}}
"""


def vigil_conf(d, http_port, sticky_port, base, sticky):
    nginx = shutil.which("nginx")
    cmd = f'exec {nginx} -p {d} -e {d}/backend$VIGIL_INSTANCE-error.log -c {d}/backend$VIGIL_INSTANCE.conf'
    conf = f"""[vigil]
log_dir = "logs"
control_socket = "vigil.sock"

[http]
listen = "127.0.0.1:{http_port}"

[programs.backend]
command = {json.dumps(cmd)}
instances = {INSTANCES}
port_base = {base}
ready = "probe"
stop_timeout = "5s"

[programs.backend.probe]
http = "http://127.0.0.1:{{port}}/"
interval = "1s"
initial_delay = "0s"
"""
    if sticky:
        conf += f"""
[programs.backend.sticky]
listen = "127.0.0.1:{sticky_port}"
hash = "ip"
"""
    return conf


class Proc:
    def __init__(self, name, cmd, d, env=None):
        self.name = name
        self.log = open(os.path.join(d, f"{name}.out"), "w")
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=d,
                                  env=env, start_new_session=True)

    def alive(self):
        if self.p.poll() is not None:
            with open(self.log.name) as f:
                raise Broken(f"{self.name} exited ({self.p.returncode}):\n{f.read()[-3000:]}")
        return True

    def stop(self, seconds=20):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(seconds)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
                raise Broken(f"{self.name} did not stop within {seconds} s of SIGTERM")
        self.log.close()
        return self.p.returncode


def start_vigil(vigil, d, http_port, env_extra, label):
    env = dict(os.environ, **env_extra)
    v = Proc(label, [vigil, "run", "-c", os.path.join(d, "vigil.toml")], d, env)

    def up():
        v.alive()
        _, body = http_get(http_port, "/api/v1/programs")
        ps = [p for p in json.loads(body) if p["name"] == "backend"]
        return len(ps) == INSTANCES and all(p["state"] == "running" for p in ps)
    wait_for(f"{label}: {INSTANCES} nginx backends running", up, 60)
    return v


def answers(port):
    status, body = http_get(port)
    return status == 200 and body.startswith("backend ") and body


# ---------------------------------------------------------------------------

def fmt_ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def table(scenario, rows):
    say(f"\n  {scenario}: wrk -t2 -c{CONNECTIONS} -d{SECONDS}s --latency, median of {RUNS} runs (per vigil variant), taken in turns")
    say(f"  {'way':<24} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'proxy CPU ms/1k req':>20}")
    for label, m in rows:
        if isinstance(m, str):
            say(f"  {label:<24} {m}")
            continue
        cpu = f"{m['cpu_ms_per_k']:.1f}" if m.get("cpu_ms_per_k") is not None else "-"
        say(f"  {label:<24} {m['rps']:>10.0f} {m['p50']:>9.3f} {m['p99']:>9.3f} {cpu:>20}")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    vigil = os.path.abspath(os.path.join(build, "vigil"))
    for tool, pkg in (("wrk", "wrk"), ("nginx", "nginx")):
        if not shutil.which(tool):
            raise Broken(f"{tool} is not installed (Debian: {pkg}; scripts/deps.sh installs it)")
    if not os.access(vigil, os.X_OK):
        raise Broken(f"no vigil binary at {vigil}")
    module = nginx_module_line()
    variants = []
    for v in (os.environ.get("STICKY_BENCH_VARIANTS") or DEFAULT_VARIANTS).split(";"):
        label, _, assigns = v.strip().partition(":")
        env = dict(a.split("=", 1) for a in assigns.split(",") if a)
        variants.append((label if label == "vigil" else f"vigil ({label})", env))

    d = tempfile.mkdtemp(prefix="vigil-sticky-bench-", dir=os.environ.get("BENCH_TMPDIR", "/tmp"))
    procs = []
    try:
        http_port, sticky_port, stream_port = free_port(), free_port(), free_port()
        base = free_port_range(INSTANCES, {http_port, sticky_port, stream_port})
        # nginx's workers (not root) read it: the temp dir is 0700.
        os.chmod(d, 0o755)
        with open(f"{d}/big.bin", "wb") as f:
            f.write(os.urandom(1 << 20))
        os.chmod(f"{d}/big.bin", 0o644)
        for i in range(INSTANCES):
            os.makedirs(f"{d}/tmp{i}", exist_ok=True)
            with open(f"{d}/backend{i}.conf", "w") as f:
                f.write(backend_conf(d, i, base + i))
        with open(f"{d}/stream.conf", "w") as f:
            f.write(stream_conf(d, module, stream_port, base))
        with open(f"{d}/vigil.toml", "w") as f:
            f.write(vigil_conf(d, http_port, sticky_port, base, sticky=True))
        check = subprocess.run([vigil, "check", "-c", f"{d}/vigil.toml"], capture_output=True, text=True)
        has_sticky = check.returncode == 0
        no_sticky_why = ""
        if not has_sticky:
            first = ((check.stdout + check.stderr).strip().splitlines() or ["?"])[0]
            no_sticky_why = f"n/a: vigil refuses the sticky config: {first.rsplit(': ', 1)[-1]}"
            say(f"  vigil: {no_sticky_why}; measuring direct and nginx only")
            with open(f"{d}/vigil.toml", "w") as f:
                f.write(vigil_conf(d, http_port, sticky_port, base, sticky=False))

        say(f"  {os.cpu_count()} CPUs; backends: {INSTANCES} nginx (1 worker each) on 127.0.0.1:{base}..{base + INSTANCES - 1}"
            f" under vigil; nginx stream proxy (1 worker) on :{stream_port}; vigil sticky on :{sticky_port}")
        v = start_vigil(vigil, d, http_port, variants[0][1], "vigil")
        procs.append(v)
        stream = Proc("nginx-stream", ["nginx", "-p", d, "-e", f"{d}/stream-error.log", "-c", f"{d}/stream.conf"], d)
        procs.append(stream)
        via_nginx = wait_for("the nginx stream proxy to answer", lambda: stream.alive() and answers(stream_port), 30)
        stream_pids = [stream.p.pid] + children(stream.p.pid)
        say(f"  nginx stream sends 127.0.0.1 to {via_nginx.strip()}; the direct run goes to backend 0")

        samples = {s: {} for s in SCENARIOS}  # scenario -> way -> wrk runs
        ways = [("direct (backend 0)", base, []), ("nginx stream", stream_port, stream_pids)]
        if not has_sticky:
            run_round(samples, ways)
        for n, (label, env) in enumerate(variants):
            if not has_sticky:
                break
            if n > 0:  # a fresh vigil (and backends) with this variant's environment
                v.stop()
                procs.remove(v)
                v = start_vigil(vigil, d, http_port, env, label)
                procs.append(v)
            via = wait_for(f"{label}: its sticky listener to answer", lambda: v.alive() and answers(sticky_port), 30)
            say(f"\n  {label} sends 127.0.0.1 to {via.strip()}")
            run_round(samples, ways + [(label, sticky_port, [v.p.pid])])
        stream.stop()
        procs.remove(stream)

        figures = {}
        for s in SCENARIOS:
            figures[s] = [(label, summarize(runs, label != "direct (backend 0)")) for label, runs in samples[s].items()]
            if not has_sticky:
                figures[s] += [(label, no_sticky_why) for label, _ in variants]

        for s in SCENARIOS:
            rows = figures[s]
            table(s, rows)
            nginx_m = rows[1][1]
            result(f"sticky {s}: direct req/s", f"{rows[0][1]['rps']:.0f}")
            result(f"sticky {s}: nginx req/s", f"{nginx_m['rps']:.0f}")
            result(f"sticky {s}: nginx p50/p99 ms", f"{nginx_m['p50']:.2f}/{nginx_m['p99']:.2f}")
            for label, m in rows[2:]:
                if isinstance(m, str):
                    result(f"sticky {s}: {label} req/s", "n/a")
                    continue
                result(f"sticky {s}: {label} req/s", f"{m['rps']:.0f}")
                result(f"sticky {s}: {label} p50/p99 ms", f"{m['p50']:.2f}/{m['p99']:.2f}")
                result(f"sticky {s}: {label}/nginx req/s", fmt_ratio(m["rps"], nginx_m["rps"]))
                result(f"sticky {s}: {label}/nginx p50/p99",
                       f"{fmt_ratio(m['p50'], nginx_m['p50'])}/{fmt_ratio(m['p99'], nginx_m['p99'])}")
            measured = [(label, m) for label, m in rows[2:] if not isinstance(m, str)]
            if len(measured) > 1:
                best = max(measured, key=lambda lm: lm[1]["rps"])
                result(f"sticky {s}: faster engine", best[0])
        for p in list(procs):
            code = p.stop()
            procs.remove(p)
            if p is v and code != 0:
                raise Broken(f"vigil exited {code} after SIGTERM")
    finally:
        for p in procs:
            try:
                p.stop(10)
            except Broken:
                pass
        if os.environ.get("BENCH_KEEP") == "1":
            say(f"  kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Broken as e:
        print(f"sticky_bench: BROKEN: {e}", file=sys.stderr)
        sys.exit(1)
