# vtaserve: the two quick-start commands are `make serve` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
MODEL_REPO ?= $(BUILD)/model_repository
PEER_DIR := tests/peer

.PHONY: all setup configure build test soak serve peers bench clean

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

bench: build
	$(BUILD)/tools/bench/vtaserve-bench all

clean:
	rm -rf $(BUILD)
