# The two commands of the README:
#   make demo   the whole chain on this machine (broker, aggregator, emulated segment)
#   make test   every test, on emulated and virtual boards only
# Both set everything up first (tools/setup.sh): venv, Mosquitto, the project.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test setup setup-test typecheck bench clean

demo: setup
	$(VENV)/bin/linewatch demo

test: setup-test
	$(PY) -m pytest $(PYTEST_ARGS)

setup:
	@sh tools/setup.sh

setup-test:
	@sh tools/setup.sh test

# mypy on firmware/ and protocol/ against the MicroPython board stubs, each board's hal against
# its own (tools/setup.sh test installs them in $(VENV)/stubs/<board>); also part of make test
typecheck: setup-test
	$(PY) -m pytest -q firmware/tests/test_typecheck.py

# Benchmarks print figures; they are never timed assertions in tests. Each one alone:
#   make bench-<name>, e.g. make bench-ingest. The suite with the machine's description, as
#   bench-results/bench.json and bench.md (docs/performance.md): make bench
BENCHES := frame_sizes mqtt_clients detector_speed detector_quality node_memory node_stages ingest fusion_accuracy \
           fusion_goals fusion_latency incident_latency emulator_scale emulator_tiers event_timing
bench: setup-test
	$(VENV)/bin/linewatch bench --out bench-results

bench-%: setup-test
	@echo "== $*"
	$(PY) -m lwtools.bench.$*

clean:
	rm -rf build .pytest_cache .hypothesis
