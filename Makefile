# hvdjob: one-command setup, tests and the main example job.
#   make run    set up everything, then train the example job on this machine (2 ranks, Gloo)
#   make test   set up everything (incl. Slurm, sshd for the test hosts), then run the full test suite
#   make unit   the fast unit layer only (no Horovod launches)
#   make bench  the performance comparisons (results in benchmarks/results/)
#   make setup-gpu   .venv-gpu: CUDA torch + Horovod with NCCL GPU operations (compiles without a GPU)
#   make gpu-check   on a GPU machine: doctor, NCCL allreduce bandwidth, smoke of the examples (JUnit)

VENV        ?= .venv
PY          := $(VENV)/bin/python
HVDJOB      := $(VENV)/bin/hvdjob
JOB         ?= jobs/digits-torch.yaml
PYTEST_ARGS ?=
BUILDTOOLS  := hvdrun_cli/buildtools

GPU_VENV    ?= .venv-gpu
GPU_TORCH   ?= 2.14.1
GPU_JUNIT   ?= gpu-check.xml

.PHONY: setup setup-test setup-gpu test-gpu-build gpu-check run test unit integration bench doctor clean distclean

setup:
	bash $(BUILDTOOLS)/system_packages.sh runtime
	VENV=$(VENV) bash $(BUILDTOOLS)/setup_env.sh

# The CUDA build: NCCL GPU operations, PyTorch only (README: GPU machines). nvcc must be installed;
# a GPU is not needed to compile. The wheel is cached under its own key (horovod-<v>-cuda-<key>).
setup-gpu:
	bash $(BUILDTOOLS)/system_packages.sh runtime
	VENV=$(GPU_VENV) HVDJOB_GPU=1 HVDJOB_FRAMEWORKS=torch TORCH_VERSION=$(GPU_TORCH) bash $(BUILDTOOLS)/setup_env.sh

# Opt-in (installs several GB; not part of `make test`): build .venv-gpu and check its Horovod, with
# that venv's own pytest (setup installs it there), so no other venv is needed.
test-gpu-build: setup-gpu
	HVDJOB_GPU_VENV=$(abspath $(GPU_VENV)) $(GPU_VENV)/bin/python -m pytest -ra tests/gpu_build $(PYTEST_ARGS)

# On a GPU machine, in the venv `make setup` (auto-detected CUDA build) or `make setup-gpu` made.
gpu-check:
	$(PY) -m hvdrun_cli.doctor.gpu_check --junit $(GPU_JUNIT)

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

# The measured comparisons (launch time, throughput torch and Keras, scaling, allreduce bandwidth, planning).
bench: setup
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf runs build *.egg-info .pytest_cache benchmarks/results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Also removes the virtual environment (the cached Horovod wheel under ~/.cache/hvdjob stays).
distclean: clean
	rm -rf $(VENV)
