# Thin wrapper: the real build is CMake. Every target installs what it needs first.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
JOBS       ?= $(shell nproc)
CONFIG     ?= config/vigil.toml

.PHONY: all deps build run test test-asan asan bench fuzz demo-stack clean

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/vigil run -c $(CONFIG)

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

# The demo plus Prometheus (127.0.0.1:9090) and Alertmanager (:9093) with the shipped rules; Ctrl-C stops all.
demo-stack: build
	VIGIL=$(BUILD)/vigil bash scripts/demo-stack.sh

bench: build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
