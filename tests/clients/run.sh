#!/usr/bin/env bash
# The heartbeat client tests (C header, Node module, Python module) against a
# real pipe and a real datagram socket, without vigil. Prints unittest's
# per-test lines and summary; exits non-zero when a test fails.
#   tests/clients/run.sh [unittest args, e.g. -k socket]
# Environment: PYTHON (default python3), CC, CXX (default cc, c++).
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONDONTWRITEBYTECODE=1
exec "${PYTHON:-python3}" -m unittest -v test_clients "$@"
