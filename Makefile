# Thin wrapper: the real build is CMake. Every target installs what it needs first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
RELEASE_BUILD ?= build-release
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
JOBS       ?= $(shell nproc)
CONFIG     ?= config/vigil.toml
PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all deps deps-run deps-package build vigil node-sticky run install deb test test-asan asan release bench fuzz demo-stack clean

all: build

# Everything the tests and benchmarks need; deps-run: only the binary and the demo.
deps:
	@bash scripts/deps.sh
deps-run:
	@bash scripts/deps.sh run
deps-package:
	@bash scripts/deps.sh package

# A first configure without the tests (make run needs no GoogleTest);
# `build` turns them on.
$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_TESTS=OFF

# Every target: tests and benchmarks too.
build: deps $(BUILD)/CMakeCache.txt
	@grep -q '^VIGIL_TESTS:BOOL=ON' $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DVIGIL_TESTS=ON
	cmake --build $(BUILD) -j $(JOBS)

# The binary and its man pages only.
vigil: deps-run $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target vigil man

# The chat demo's socket.io (pinned in tests/sticky/package-lock.json), into
# the build folder, not the source tree; chat_server.js finds it on NODE_PATH.
# Without it (no npm registry) the rest of the demo still runs.
NODE_STICKY = $(abspath $(BUILD))/node_sticky
node-sticky:
	@bash tests/sticky/npm_ci.sh $(NODE_STICKY) || \
	  echo "make: socket.io is not installed: the chat demo will not start" >&2

run: deps-run $(BUILD)/CMakeCache.txt node-sticky
	cmake --build $(BUILD) -j $(JOBS) --target vigil
	NODE_PATH=$(NODE_STICKY)/node_modules $(BUILD)/vigil run -c $(CONFIG)

# The binary, man pages, completions, systemd unit, example configs and
# clients under $(DESTDIR)$(PREFIX); `cmake --install $(BUILD)` does the same.
install: vigil
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# A .deb (installing under /usr) in $(BUILD)/, its Depends from dpkg-shlibdeps.
deb: deps-package vigil
	cd $(BUILD) && cpack -G DEB

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	FUZZ_BUILD=$(FUZZ_BUILD) bash fuzz/run.sh 10

# libFuzzer on the heartbeat protocol parser and the HTTP probe judge (clang only; skipped without it).
fuzz: deps
	FUZZ_BUILD=$(FUZZ_BUILD) bash fuzz/run.sh $(FUZZ_SECONDS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DVIGIL_SANITIZE=ON

asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)

test-asan: asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

# What a packager builds: every target at -O3 with -Werror (CI builds it too).
release: deps
	cmake -S . -B $(RELEASE_BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(RELEASE_BUILD) -j $(JOBS)

# The demo plus Prometheus (127.0.0.1:9090) and Alertmanager (:9093) with the shipped rules; Ctrl-C stops all.
demo-stack: build node-sticky
	NODE_PATH=$(NODE_STICKY)/node_modules VIGIL=$(BUILD)/vigil bash scripts/demo-stack.sh

bench: build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(RELEASE_BUILD) $(FUZZ_BUILD)
