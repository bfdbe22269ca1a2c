#!/usr/bin/env bash
# src/core is pure: the build's include paths keep vigil's own I/O headers
# out of it, and this keeps the system's out. Allowed: <sys/wait.h> for the
# wait-status macros and <arpa/inet.h> for inet_pton, neither a syscall.
set -euo pipefail
core="$(cd "$(dirname "$0")/../src/core" && pwd)"
forbidden='#include <(unistd\.h|fcntl\.h|signal\.h|poll\.h|dirent\.h|sys/(socket|stat|types|prctl|mman|resource|ioctl|epoll|un|time)\.h|netinet/[a-z_]+\.h|event2/[a-z_]+\.h|spdlog/.*|thread|fstream|filesystem_ops)>'
if grep -nE "$forbidden" "$core"/*.h "$core"/*.cpp; then
  echo "core_purity: the lines above include a system or I/O header in src/core" >&2
  exit 1
fi
# Reading the clock is a decision about time that core leaves to its callers.
if grep -nE 'steady_clock::now|system_clock::now|\b(time|gettimeofday|clock_gettime)\(' "$core"/*.h "$core"/*.cpp; then
  echo "core_purity: the lines above read the clock in src/core; take the time as a parameter" >&2
  exit 1
fi
echo "core_purity: src/core includes no I/O header and reads no clock"
