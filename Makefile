# Thin wrapper over CMake. `make test` = setup + build + ctest.
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: all setup configure build test score clean

all: build

setup:
	./scripts/setup.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja

configure: $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: setup
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The main job on the bundled example.
score: setup
	$(MAKE) build
	$(BUILD)/grm score --input examples/pairwise.jsonl --explain

clean:
	rm -rf $(BUILD)

# The bundled judge model models/grm-tiny, trained from scratch (scripts/train-tiny.sh; ~1 hour on 2 cores).
# Knobs are environment variables: make model STEPS=60 OUT=/tmp/grm-smoke
.PHONY: model
model: configure
	cmake --build $(BUILD) -j $(JOBS) --target grm
	GRM=$(abspath $(BUILD))/grm ./scripts/train-tiny.sh
