# vtaserve: the two quick-start commands are `make serve` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
MODEL_REPO ?= $(BUILD)/model_repository
PEER_DIR := tests/peer

.PHONY: all setup configure build test serve peers bench clean docker-test format format-check

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
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 1500

serve: build
	@bash scripts/serve.sh $(BUILD) $(MODEL_REPO)

# Builds docker/Dockerfile with Debian's docker.io (offline: debootstrap base,
# legacy builder), checks its HEALTHCHECK, one inference and SIGTERM exit 0.
docker-test:
	@bash scripts/docker-test.sh

bench: build
	$(BUILD)/tools/bench/vtaserve-bench all

# clang-format (the repo's .clang-format) over every tracked C++ file: `format`
# rewrites them, `format-check` fails on any file that would change (CI).
CXX_SOURCES = $(shell git ls-files '*.cc' '*.h')

format: setup
	clang-format -i $(CXX_SOURCES)

format-check: setup
	clang-format --dry-run -Werror $(CXX_SOURCES)

clean:
	rm -rf $(BUILD)
