#!/usr/bin/env bash
# Installs the pinned npm packages of the sticky proxy's socket.io test and
# chat demo (tests/sticky/package-lock.json) into DEST/node_modules, DEST
# being in the build folder: never in the source tree, never globally.
# Does nothing when DEST already holds exactly this lock file's packages, so
# `make run` and every ctest run after the first need no network.
#   bash tests/sticky/npm_ci.sh BUILD/node_sticky
# SRC, when given, is another folder with a package.json and a pinned
# package-lock.json (tests/page: the status page test's playwright-core).
#   bash tests/sticky/npm_ci.sh BUILD/node_page tests/page
set -euo pipefail
dest=${1:?usage: npm_ci.sh DEST [SRC]}
here=$(cd "${2:-$(dirname "$0")}" && pwd)
if ! command -v npm >/dev/null; then
  echo "npm_ci.sh: npm is not installed (scripts/deps.sh installs it)" >&2
  exit 1
fi
mkdir -p "$dest"
if [[ -d $dest/node_modules ]] && cmp -s "$here/package-lock.json" "$dest/.installed-lock.json"; then
  exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dest/"
rm -f "$dest/.installed-lock.json"
echo "npm_ci.sh: installing $(basename "$here")'s pinned packages into $dest (npm ci)"
npm ci --prefix "$dest" --no-audit --no-fund --loglevel=error
cp "$here/package-lock.json" "$dest/.installed-lock.json"
