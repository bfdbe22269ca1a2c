#!/usr/bin/env bash
# Installs the Debian packages vigil builds and tests with, only those missing.
# Fast when everything is present: one dpkg-query, no apt-get.
set -euo pipefail
pkgs=(cmake g++ make pkg-config
      libevent-dev prometheus-cpp-dev libtomlplusplus-dev libspdlog-dev
      libgtest-dev nlohmann-json3-dev prometheus
      systemd libsystemd-dev prometheus-alertmanager python3 python3-yaml curl
      nginx libnginx-mod-stream redis-server redis-tools gunicorn nodejs wrk)
# npm installs the sticky tests' pinned socket.io (tests/sticky/npm_ci.sh).
# NodeSource's nodejs carries its own npm and conflicts with Debian's: ask
# for Debian's only where node came without one.
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
