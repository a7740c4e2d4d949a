# vtaserve: the two quick-start commands are `make serve` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
MODEL_REPO ?= $(BUILD)/model_repository
PEER_DIR := tests/peer

.PHONY: all setup configure build test soak serve peers bench clean docker-test format format-check \
	test-asan test-tsan fuzz fuzz-build

all: build

setup:
	@bash scripts/setup-debian.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

configure: setup $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# Node peers for tests (ONNX Runtime); installed without running npm scripts.
peers: setup
	@bash scripts/setup-peers.sh

test: build peers
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 1500 -LE soak

# The long reliability runs (docs/testing.md): 60 s of 64 clients on
# ResNet-18 per placement, 10,000 overload iterations. Figures are printed
# as JSON lines and appended to $(BUILD)/reliability.jsonl.
soak: build
	rm -f $(abspath $(BUILD))/reliability.jsonl
	cd $(BUILD) && VTASERVE_RELIABILITY_JSON=$(abspath $(BUILD))/reliability.jsonl \
	  ctest --output-on-failure -V -L soak

serve: build
	@bash scripts/serve.sh $(BUILD) $(MODEL_REPO)

# Builds docker/Dockerfile with Debian's docker.io (offline: debootstrap base,
# legacy builder), checks its HEALTHCHECK, one inference and SIGTERM exit 0.
docker-test:
	@bash scripts/docker-test.sh

bench: build
	$(BUILD)/tools/bench/vtaserve-bench all

# Sanitizer suites, each in its own build folder.
# test-asan: ASan + UBSan, no recovery (any report fails the test). ASAN_TESTS
#   is a ctest -R regex (empty: the whole suite).
# test-tsan: ThreadSanitizer on the concurrent parts (TSAN_TESTS, a ctest -R
#   regex); suppressions only for uninstrumented Debian libraries, see
#   tests/sanitizers/tsan.supp.
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
ASAN_TESTS ?=
TSAN_TESTS ?= ^(ServerTest|TlsTest|OnnxModelTest|SchedulerTest|SchedulerCreateTest|ModelManagerTest|HostileModelsTest|StatusConversionTest|TensorConversionTest|Requests/TensorConversionBadTest|ThreadPoolTest|CpuBackendApiTest|IsaAndThreads/CpuBackendTest\.SmallResNet.*_2threads|Configs/SimDeviceTest\.GemmSplit|Configs/CommandQueueTest|Models/VtaResNetTest\..*threads2)|^python_grpc_client$$
SAN_CMAKE = cmake -S . -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
export ASAN_OPTIONS ?= detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1

$(ASAN_BUILD)/build.ninja:
	$(SAN_CMAKE) -B $(ASAN_BUILD) -DVTASERVE_SANITIZER=address

$(TSAN_BUILD)/build.ninja:
	$(SAN_CMAKE) -B $(TSAN_BUILD) -DVTASERVE_SANITIZER=thread

test-asan: setup peers $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 3000 \
	  $(if $(ASAN_TESTS),-R '$(ASAN_TESTS)')

test-tsan: setup peers $(TSAN_BUILD)/build.ninja
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/sanitizers/tsan.supp" \
	  ctest --output-on-failure -j $(JOBS) --timeout 3000 -R '$(TSAN_TESTS)'

# libFuzzer targets (tests/fuzz/), built with Debian's clang into their own
# folder; `make fuzz FUZZ_SECONDS=N` runs each for N seconds on its corpus.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

$(FUZZ_BUILD)/build.ninja:
	@bash scripts/setup-fuzz.sh
	CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DVTASERVE_FUZZ=ON -DVTASERVE_BUILD_TESTS=OFF $(CMAKE_FLAGS)

fuzz-build: setup $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets

fuzz: fuzz-build
	@bash tests/fuzz/run_fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# clang-format (the repo's .clang-format) over every tracked C++ file: `format`
# rewrites them, `format-check` fails on any file that would change (CI).
CXX_SOURCES = $(shell git ls-files '*.cc' '*.h')

format: setup
	clang-format -i $(CXX_SOURCES)

format-check: setup
	clang-format --dry-run -Werror $(CXX_SOURCES)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
