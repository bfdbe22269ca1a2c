#!/usr/bin/env python3
"""Checks the container and fleet files offline (no Docker daemon, no cluster):

- Dockerfile: a Debian 12 build stage whose -dev packages are in
  scripts/deps.sh, a debian:12-slim runtime stage whose apt-get line holds
  exactly the packages the built binary's shared libraries come from
  (`ldd VIGIL` -> `dpkg -S`; on a Debian 12 host only, where the names are
  the image's), vigil as ENTRYPOINT running `run -c /etc/vigil/vigil.toml`,
  EXPOSE of the sample config's [http] port, STOPSIGNAL SIGTERM.
- deploy/container/vigil.toml: `vigil check` accepts it, and a vigil run
  with it (on a free port) answers the liveness probe's /healthz.
- deploy/kubernetes/: every YAML parses; the ConfigMap holds the sample
  config; the Deployment's selector, port, probes, mounts and grace period
  fit together; the PodMonitor selects its pods, scrapes the named port and
  sets job="vigil"; the PrometheusRule is what scripts/gen-k8s-rules.py
  generates from deploy/prometheus/vigil-rules.yml, and promtool accepts it.
- deploy/prometheus/fleet.yml with targets/fleet.json: promtool check config
  (which validates the file_sd file too), job "vigil".

usage: check_container.py VIGIL_BINARY
"""
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
problems = []


def fail(msg):
    problems.append(msg)
    print(f"  FAIL: {msg}")


def ok(msg):
    print(f"  {msg}")


def path(*parts):
    return os.path.join(ROOT, *parts)


def parse_duration(text):
    total = 0.0
    for n, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        total += float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def dockerfile():
    print("== Dockerfile")
    text = open(path("Dockerfile")).read()
    # Join continuation lines, drop comments.
    logical = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines()
                                             if not l.lstrip().startswith("#")))
    instrs = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l.strip() else "")
              for l in logical.splitlines() if l.strip()]
    stages = []
    for op, arg in instrs:
        if op == "FROM":
            stages.append({"from": arg.split()[0], "instrs": []})
        elif stages:
            stages[-1]["instrs"].append((op, arg))
    if len(stages) != 2:
        fail(f"Dockerfile: want 2 stages (build, runtime), found {len(stages)}")
        return None
    build, runtime = stages
    if build["from"] != "debian:12":
        fail(f"build stage FROM {build['from']}, want debian:12")
    if runtime["from"] != "debian:12-slim":
        fail(f"runtime stage FROM {runtime['from']}, want debian:12-slim")

    def apt_packages(stage):
        pkgs = []
        for op, arg in stage["instrs"]:
            if op != "RUN":
                continue
            for cmd in arg.split("&&"):
                words = shlex.split(cmd)
                if words[:2] == ["apt-get", "install"]:
                    pkgs += [w for w in words[2:] if not w.startswith("-")]
        return pkgs

    deps = open(path("scripts", "deps.sh")).read()
    deps_pkgs = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", deps[deps.index("pkgs=("):deps.index(")", deps.index("pkgs=("))]))
    build_pkgs = apt_packages(build)
    for p in build_pkgs:
        if p not in deps_pkgs and p != "ca-certificates":
            fail(f"build stage installs {p}, which scripts/deps.sh does not list")
    for p in ("libevent-dev", "prometheus-cpp-dev", "libtomlplusplus-dev", "libspdlog-dev",
              "nlohmann-json3-dev"):
        if p not in build_pkgs:
            fail(f"build stage lacks {p}")
    ok(f"build stage: debian:12, {len(build_pkgs)} packages, all in scripts/deps.sh")

    runtime_pkgs = apt_packages(runtime)
    if any(p.endswith("-dev") for p in runtime_pkgs):
        fail(f"runtime stage installs -dev packages: {runtime_pkgs}")
    ops = {op: arg for op, arg in runtime["instrs"]}
    try:
        entry = json.loads(ops.get("ENTRYPOINT", "null"))
        cmd = json.loads(ops.get("CMD", "[]"))
    except json.JSONDecodeError as e:
        fail(f"ENTRYPOINT/CMD must be JSON arrays (exec form, so vigil is PID 1): {e}")
        entry, cmd = None, []
    if entry != ["/usr/local/bin/vigil"] or cmd != ["run", "-c", "/etc/vigil/vigil.toml"]:
        fail(f"want ENTRYPOINT [\"/usr/local/bin/vigil\"] CMD [\"run\", \"-c\", "
             f"\"/etc/vigil/vigil.toml\"], have {entry} {cmd}")
    if ops.get("STOPSIGNAL") != "SIGTERM":
        fail(f"STOPSIGNAL {ops.get('STOPSIGNAL')}, want SIGTERM (vigil's graceful stop)")
    copies = [a.split() for o, a in runtime["instrs"] if o == "COPY"]
    if ["deploy/container/vigil.toml", "/etc/vigil/vigil.toml"] not in copies:
        fail("runtime stage does not COPY deploy/container/vigil.toml to /etc/vigil/vigil.toml")
    if ["--from=build", "/build/vigil", "/usr/local/bin/vigil"] not in copies:
        fail("runtime stage does not COPY the binary from the build stage")
    ok(f"runtime stage: debian:12-slim, ENTRYPOINT vigil {' '.join(cmd)}, "
       f"STOPSIGNAL {ops.get('STOPSIGNAL')}, EXPOSE {ops.get('EXPOSE')}")
    return runtime_pkgs, ops.get("EXPOSE", "")


def runtime_libraries(vigil, runtime_pkgs):
    print("== runtime packages vs ldd")
    osr = open("/etc/os-release").read() if os.path.exists("/etc/os-release") else ""
    if 'VERSION_ID="12"' not in osr or "ID=debian" not in osr:
        ok("host is not Debian 12: package names may differ from the image's; skipped")
        return
    out = subprocess.run(["ldd", vigil], capture_output=True, text=True, check=True).stdout
    libs = re.findall(r"=>\s+(/\S+)", out)
    interp = re.findall(r"^\s+(/\S+ld-linux\S*)", out, re.M)
    # Debian 12 merged /usr: dpkg knows a library under /lib/... or
    # /usr/lib/..., by the name ldd printed or the file it links to. One
    # dpkg -S for every candidate (it prints what it finds, fails on the rest).
    candidates = {}
    for lib in libs + interp:
        cands = []
        for c in (lib, os.path.realpath(lib)):
            for q in (c, re.sub(r"^/usr/lib/", "/lib/", c), re.sub(r"^/lib/", "/usr/lib/", c),
                      re.sub(r"^/lib64/", "/usr/lib64/", c)):
                if q not in cands:
                    cands.append(q)
        candidates[lib] = cands
    every = sorted({c for cands in candidates.values() for c in cands})
    found = {}
    r = subprocess.run(["dpkg", "-S"] + every, capture_output=True, text=True)
    for line in r.stdout.splitlines():
        pkg, _, file = line.partition(": ")
        found[file.strip()] = pkg.split(":")[0].strip()
    needed = {}
    for lib, cands in candidates.items():
        pkg = next((found[c] for c in cands if c in found), None)
        if pkg is None:
            fail(f"dpkg -S knows no package for {lib}")
        else:
            needed[lib] = pkg
    want = set(needed.values())
    have = set(runtime_pkgs)
    for lib, pkg in sorted(needed.items()):
        if pkg not in have:
            fail(f"the binary needs {lib} from {pkg}, not in the runtime stage's apt-get line")
    for pkg in sorted(have - want):
        fail(f"runtime stage installs {pkg}, which the binary does not need")
    ok(f"{len(needed)} shared libraries from {len(want)} packages: "
       f"{' '.join(sorted(want))}: all in the runtime stage, nothing more")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sample_config(vigil, expose):
    print("== deploy/container/vigil.toml")
    cfg = path("deploy", "container", "vigil.toml")
    r = subprocess.run([vigil, "check", "-c", cfg], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"vigil check rejects {cfg}: {r.stdout}{r.stderr}")
    text = open(cfg).read()
    m = re.search(r'^listen\s*=\s*"[^"]*:(\d+)"', text, re.M)
    if not m:
        fail("the sample config has no [http] listen")
        return None
    port = m.group(1)
    if expose.split() != [port]:
        fail(f"Dockerfile EXPOSE {expose!r}, the sample config listens on {port}")
    ok(f"vigil check: ok; listens on :{port}, the port the Dockerfile exposes")

    # The liveness probe's endpoint answers with this config (paths moved
    # to a temp dir, a free port instead of the fixed one).
    with tempfile.TemporaryDirectory(prefix="vigil-container-") as tmp:
        p = free_port()
        local = re.sub(r'^listen\s*=.*$', f'listen = "127.0.0.1:{p}"', text, flags=re.M)
        local = re.sub(r'^log_dir\s*=.*$', 'log_dir = "logs"', local, flags=re.M)
        local = re.sub(r'^control_socket\s*=.*$', 'control_socket = "vigil.sock"', local,
                       flags=re.M)
        with open(os.path.join(tmp, "vigil.toml"), "w") as f:
            f.write(local)
        proc = subprocess.Popen([vigil, "run", "-c", os.path.join(tmp, "vigil.toml")],
                                cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        body, deadline = None, time.monotonic() + 20
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{p}/healthz", timeout=2) as resp:
                        body = json.loads(resp.read())
                        break
                except OSError:
                    time.sleep(0.05)  # polling for the listener, bounded by the deadline
        finally:
            proc.terminate()
            try:
                rc = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
        output = proc.stdout.read().decode(errors="replace")
        if body != {"status": "ok"}:
            fail(f"GET /healthz with the sample config: {body!r}\n{output}")
        elif rc != 0:
            fail(f"vigil exited {rc} on SIGTERM with the sample config\n{output}")
        else:
            ok('a vigil on it answers GET /healthz {"status":"ok"} and exits 0 on SIGTERM')
    return text


def kubernetes(sample_text, expose):
    print("== deploy/kubernetes")
    kdir = path("deploy", "kubernetes")
    docs = {}
    for name in sorted(os.listdir(kdir)):
        if not name.endswith((".yaml", ".yml")):
            continue
        try:
            for d in yaml.safe_load_all(open(os.path.join(kdir, name))):
                if d is None:
                    continue
                for key in ("apiVersion", "kind", "metadata"):
                    if key not in d:
                        fail(f"{name}: a document without {key}")
                if "name" not in (d.get("metadata") or {}):
                    fail(f"{name}: {d.get('kind')} without metadata.name")
                docs[d.get("kind")] = (name, d)
        except yaml.YAMLError as e:
            fail(f"{name}: does not parse: {e}")
    for kind, api in (("ConfigMap", "v1"), ("Deployment", "apps/v1"),
                      ("PodMonitor", "monitoring.coreos.com/v1"),
                      ("PrometheusRule", "monitoring.coreos.com/v1")):
        if kind not in docs:
            fail(f"no {kind} in deploy/kubernetes")
            return
        if docs[kind][1]["apiVersion"] != api:
            fail(f"{kind}: apiVersion {docs[kind][1]['apiVersion']}, want {api}")
    ok(f"parsed: {', '.join(f'{k} ({n})' for k, (n, _) in sorted(docs.items()))}")

    cm = docs["ConfigMap"][1]
    if cm.get("data", {}).get("vigil.toml") != sample_text:
        fail("ConfigMap vigil.toml differs from deploy/container/vigil.toml")
    else:
        ok("ConfigMap vigil.toml is deploy/container/vigil.toml")

    dep = docs["Deployment"][1]
    spec = dep["spec"]
    tmpl = spec["template"]
    sel = spec["selector"]["matchLabels"]
    pod_labels = tmpl["metadata"]["labels"]
    if any(pod_labels.get(k) != v for k, v in sel.items()):
        fail(f"Deployment selector {sel} does not match the pod labels {pod_labels}")
    containers = tmpl["spec"]["containers"]
    c = containers[0]
    if c.get("args") != ["run", "-c", "/etc/vigil/vigil.toml"] or "command" in c:
        fail("the container must keep the image's ENTRYPOINT (vigil) and run "
             "`run -c /etc/vigil/vigil.toml`")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if ports.get("metrics") != int(expose):
        fail(f"container port 'metrics' is {ports.get('metrics')}, the config listens on {expose}")
    for probe in ("livenessProbe", "readinessProbe"):
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != "/healthz" or get.get("port") not in ("metrics", int(expose)):
            fail(f"{probe} must GET /healthz on the metrics port, has {get}")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in tmpl["spec"].get("volumes", [])}
    cfg_vol = volumes.get(mounts.get("/etc/vigil"), {})
    if (cfg_vol.get("configMap") or {}).get("name") != cm["metadata"]["name"]:
        fail("/etc/vigil is not mounted from the ConfigMap")
    for d in ("/var/log/vigil", "/run/vigil"):
        if d not in mounts:
            fail(f"{d} (log_dir / control_socket of the config) has no writable volume")
    stop = max([parse_duration(s) for s in re.findall(r'^stop_timeout\s*=\s*"([^"]+)"',
                                                      sample_text, re.M)] + [10])
    grace = tmpl["spec"].get("terminationGracePeriodSeconds", 30)
    if grace <= stop:
        fail(f"terminationGracePeriodSeconds {grace} is not above the largest stop_timeout {stop}s")
    ok(f"Deployment: selector, port metrics={ports.get('metrics')}, /healthz probes, "
       f"config mount, grace {grace}s > stop_timeout {stop:g}s")

    pm = docs["PodMonitor"][1]["spec"]
    if any(pod_labels.get(k) != v for k, v in pm["selector"]["matchLabels"].items()):
        fail("PodMonitor selector does not match the Deployment's pods")
    eps = pm.get("podMetricsEndpoints", [])
    if not eps or eps[0].get("port") not in ports or eps[0].get("path", "/metrics") != "/metrics":
        fail(f"PodMonitor must scrape /metrics on a named container port, has {eps}")
    elif not any(r.get("targetLabel") == "job" and r.get("replacement") == "vigil"
                 for r in eps[0].get("relabelings", [])):
        fail('PodMonitor does not set job="vigil" (VigilTargetDown matches up{job="vigil"})')
    else:
        ok('PodMonitor: selects the pods, scrapes port metrics /metrics, job="vigil"')

    r = subprocess.run([sys.executable, path("scripts", "gen-k8s-rules.py"), "--check"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"PrometheusRule is not what scripts/gen-k8s-rules.py generates:\n{r.stdout}{r.stderr}")
    rules = yaml.safe_load(open(path("deploy", "prometheus", "vigil-rules.yml")))
    pr = docs["PrometheusRule"][1]
    if pr["spec"].get("groups") != rules["groups"]:
        fail("PrometheusRule spec.groups differ from vigil-rules.yml groups")
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        yaml.safe_dump({"groups": pr["spec"]["groups"]}, f)
        f.flush()
        r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"promtool check rules on the PrometheusRule's spec: {r.stdout}{r.stderr}")
    n = sum(1 for g in pr["spec"]["groups"] for x in g["rules"] if "alert" in x)
    ok(f"PrometheusRule: generated from vigil-rules.yml ({n} alerts), promtool check rules: ok")


def fleet():
    print("== fleet file_sd")
    r = subprocess.run(["promtool", "check", "config", path("deploy", "prometheus", "fleet.yml")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"promtool check config fleet.yml:\n{r.stdout}{r.stderr}")
    conf = yaml.safe_load(open(path("deploy", "prometheus", "fleet.yml")))
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    if "vigil" not in jobs:
        fail('fleet.yml has no job "vigil" (the rules match up{job="vigil"})')
        return
    files = [f for sd in jobs["vigil"].get("file_sd_configs", []) for f in sd["files"]]
    if files != ["targets/fleet.json"]:
        fail(f"job vigil reads {files}, want targets/fleet.json")
    groups = json.load(open(path("deploy", "prometheus", "targets", "fleet.json")))
    hosts = [t for g in groups for t in g["targets"]]
    if not hosts or not all(re.fullmatch(r"[\w.-]+:\d+", t) for t in hosts):
        fail(f"targets/fleet.json: want host:port targets, have {hosts}")
    ok(f"promtool check config (with the file_sd file): ok; {len(hosts)} hosts in "
       f"{len(groups)} groups")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    vigil = os.path.abspath(sys.argv[1])
    result = dockerfile()
    if result:
        runtime_pkgs, expose = result
        runtime_libraries(vigil, runtime_pkgs)
        sample = sample_config(vigil, expose)
        if sample is not None:
            kubernetes(sample, expose.split()[0] if expose.split() else "0")
    fleet()
    if problems:
        print(f"check_container: {len(problems)} problem(s)")
        sys.exit(1)
    print("container and fleet files: PASS")


if __name__ == "__main__":
    main()
