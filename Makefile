# hvdjob: one-command setup, tests and the main example job.
#   make run    set up everything, then train the example job on this machine (2 ranks, Gloo)
#   make test   set up everything (incl. Slurm, sshd for the test hosts), then run the full test suite
#   make unit   the fast unit layer only (no Horovod launches)
#   make bench  the performance comparisons (results in benchmarks/results/)

VENV        ?= .venv
PY          := $(VENV)/bin/python
HVDJOB      := $(VENV)/bin/hvdjob
JOB         ?= jobs/digits-torch.yaml
PYTEST_ARGS ?=
BUILDTOOLS  := hvdrun_cli/buildtools

.PHONY: setup setup-test run test unit integration bench doctor clean distclean

setup:
	bash $(BUILDTOOLS)/system_packages.sh runtime
	VENV=$(VENV) bash $(BUILDTOOLS)/setup_env.sh

setup-test: setup
	bash $(BUILDTOOLS)/system_packages.sh test

run: setup
	$(HVDJOB) run $(JOB)

doctor: setup
	$(HVDJOB) doctor

test: setup-test
	$(PY) -m pytest -ra $(PYTEST_ARGS)

unit:
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

integration: setup-test
	$(PY) -m pytest -ra -m "integration or slurm or multihost" $(PYTEST_ARGS)

# The measured comparisons (launch time, throughput, scaling, allreduce bandwidth), under 10 minutes.
bench: setup
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf runs build *.egg-info .pytest_cache benchmarks/results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Also removes the virtual environment (the cached Horovod wheel under ~/.cache/hvdjob stays).
distclean: clean
	rm -rf $(VENV)
