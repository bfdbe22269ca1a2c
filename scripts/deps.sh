#!/usr/bin/env bash
# Installs the Debian packages vigil needs, only those missing.
# Fast when everything is present: one dpkg-query, no apt-get.
#
#   scripts/deps.sh run       build the vigil binary and run the demo (make run, make install)
#   scripts/deps.sh package   that, and what `make deb` needs (dpkg-shlibdeps)
#   scripts/deps.sh [all]     everything the tests and benchmarks need too (make test)
set -euo pipefail
mode=${1:-all}
# The binary, its man pages (python3), and the demo's programs (python3, node).
run_pkgs=(cmake g++ make pkg-config
          libevent-dev prometheus-cpp-dev libtomlplusplus-dev libspdlog-dev
          nlohmann-json3-dev python3 nodejs)
package_pkgs=(dpkg-dev file)
test_pkgs=(libgtest-dev prometheus
           systemd libsystemd-dev prometheus-alertmanager curl
           python3-yaml nginx libnginx-mod-stream redis-server redis-tools gunicorn wrk
           # the man page, completion and package tests
           man-db groff-base zsh fish
           # the status page test's browser (driven by playwright-core from npm)
           chromium)
case $mode in
  run) pkgs=("${run_pkgs[@]}") ;;
  package) pkgs=("${run_pkgs[@]}" "${package_pkgs[@]}") ;;
  all) pkgs=("${run_pkgs[@]}" "${package_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 [run|package|all]" >&2; exit 2 ;;
esac
# npm installs the pinned socket.io of the chat demo and its test
# (tests/sticky/npm_ci.sh). NodeSource's nodejs carries its own npm and
# conflicts with Debian's: ask for Debian's only where node came without one.
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
