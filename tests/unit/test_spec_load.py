"""load_spec: from a YAML file (plus flags and environment) to a validated, frozen JobSpec."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hvdrun_cli.errors import SpecError
from hvdrun_cli.spec import Override, load_spec
from hvdrun_cli.spec.model import (
    CheckpointSpec,
    HorovodSpec,
    JobSpec,
    ResourcesSpec,
    SlurmSpec,
    TrainSpec,
    WatchdogSpec,
)

JOBS = Path(__file__).resolve().parents[2] / "jobs"


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """A spec directory with a script and a hostfile, and a separate working directory."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "train.py").write_text("print('training')\n")
    (specs / "hosts.txt").write_text("localhost slots=2\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return specs, work


def write(directory: Path, text: str, name: str = "job.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path, overrides=(), environ=None):
    with pytest.raises(SpecError) as info:
        load_spec(path, overrides, environ={} if environ is None else environ)
    return [str(p) for p in info.value.problems]


def test_minimal_script_spec_gets_its_defaults(layout):
    specs, work = layout
    path = write(specs, "framework: torch\nscript: train.py\n", "my-job.yaml")
    spec = load_spec(path, environ={})
    assert spec.framework == "torch"
    assert spec.script == str(specs / "train.py")
    assert not spec.managed and spec.train is None
    assert spec.name == "my-job"
    assert spec.run_root == str(work / "runs")
    assert spec.checkpoint.dir == str(work / "runs" / "my-job" / "checkpoints")
    assert spec.source == str(path)
    assert spec.base_dir == str(specs)
    assert spec.horovod == HorovodSpec() and spec.slurm == SlurmSpec()


@pytest.mark.parametrize("train", ["train: {}", "train:"])
def test_empty_train_section_means_managed_training_with_defaults(layout, train):
    specs, _ = layout
    spec = load_spec(write(specs, f"framework: tensorflow\n{train}\n"), environ={})
    assert spec.managed
    assert spec.train == TrainSpec()


def test_paths_resolve_against_the_spec_directory_and_outputs_against_the_cwd(layout):
    specs, work = layout
    path = write(specs, """\
        framework: torch
        script: train.py
        resources:
          hostfile: hosts.txt
        run_root: out
        checkpoint:
          dir: ckpt
        horovod:
          timeline: logs/timeline.json
    """)
    spec = load_spec(path, environ={})
    assert spec.script == str(specs / "train.py")
    assert spec.resources.hostfile == str(specs / "hosts.txt")
    assert spec.run_root == str(work / "out")
    assert spec.checkpoint.dir == str(work / "ckpt")
    assert spec.horovod.timeline == "logs/timeline.json"


def test_paths_from_the_command_line_resolve_against_the_cwd(layout):
    specs, work = layout
    (work / "mine.txt").write_text("localhost:2\n")
    path = write(specs, "framework: torch\nscript: train.py\nresources:\n  hostfile: hosts.txt\n")
    spec = load_spec(path, [Override("resources.hostfile", "mine.txt", "--hostfile")], environ={})
    assert spec.resources.hostfile == str(work / "mine.txt")
    assert problems_of(path, [Override("resources.hostfile", "hosts.txt", "--hostfile")]) == [
        f"--hostfile: resources.hostfile: no such file: {work / 'hosts.txt'} (got 'hosts.txt')"
    ]


def test_values_keep_the_text_the_user_wrote(layout):
    specs, _ = layout
    path = write(specs, """\
        framework: torch
        script: train.py
        args: [--lr, 0.10, --flag, yes, 7]
        env:
          OMP_NUM_THREADS: 04
          TF_USE_LEGACY_KERAS: 1
          on: true
        slurm:
          time: 1:30:00
          mem: 4000
    """)
    spec = load_spec(path, environ={})
    assert spec.args == ("--lr", "0.10", "--flag", "yes", "7")
    assert spec.env == {"OMP_NUM_THREADS": "04", "TF_USE_LEGACY_KERAS": "1", "on": "true"}
    assert spec.slurm.time == "1:30:00"  # YAML 1.1 would have read 5400
    assert spec.slurm.mem == "4000"


def test_numbers_and_plain_data(layout):
    specs, _ = layout
    path = write(specs, """\
        framework: torch
        train:
          lr: 1e-3
          epochs: 3
          optimizer: adam
          optimizer_args: {eps: 1e-8, betas: [0.9, 0.99]}
          data: mydata:make
          data_args: {snapshot: 2024-01-05}
    """)
    train = load_spec(path, environ={}).train
    assert train.lr == 0.001 and isinstance(train.lr, float)
    assert train.epochs == 3
    assert train.optimizer_args == {"eps": 1e-8, "betas": [0.9, 0.99]}
    assert train.data_args == {"snapshot": "2024-01-05"}


def test_environment_interpolation(layout):
    specs, _ = layout
    path = write(specs, """\
        framework: torch
        name: ${JOB:-demo}
        train: {}
        resources:
          np: ${NP:-2}
        slurm:
          partition: ${PARTITION}
          setup: ["export X=$$HOME/lib", "echo $PATH"]
    """)
    spec = load_spec(path, environ={"PARTITION": "cpu", "NP": "8"})
    assert spec.name == "demo"
    assert spec.resources.np == 8
    assert spec.slurm.partition == "cpu"
    assert spec.slurm.setup == ("export X=$HOME/lib", "echo $PATH")
    assert problems_of(path, environ={}) == [
        f"{path}:7: slurm.partition: environment variable PARTITION is not set"
        " (use ${PARTITION:-default} to give a default)"
    ]


def test_quoted_interpolation_stays_a_string(layout):
    specs, _ = layout
    path = write(specs, 'framework: torch\ntrain: {}\nresources:\n  np: "${NP}"\n')
    assert problems_of(path, environ={"NP": "4"}) == [f"{path}:4: resources.np: must be a whole number (got '4')"]


def test_messages_use_the_path_as_given(layout, monkeypatch):
    specs, _ = layout
    write(specs, "framework: torch\ntrain:\n  lr: fast\n")
    monkeypatch.chdir(specs.parent)
    assert problems_of("specs/job.yaml") == ["specs/job.yaml:3: train.lr: must be a number (got 'fast')"]


def test_every_problem_is_reported_at_once_in_file_order(layout):
    specs, _ = layout
    path = write(specs, """\
        framework: pytorch
        train:
          epoch: 3
          lr: -1
          validate: 1
        launcher: mpii
        resources:
          np: 0
          hosts: [node1:0]
        frobnicate: true
    """, "bad.yaml")
    problems = problems_of(path, [Override("train.epochs", "two", "--set")])
    assert problems == [
        f"{path}:1: framework: must be one of 'torch', 'tensorflow'; did you mean 'torch'? (got 'pytorch')",
        f"{path}:3: train.epoch: unknown key; did you mean 'epochs'?",
        f"{path}:4: train.lr: must be greater than 0 (got -1)",
        f"{path}:5: train.validate: must be true or false (got 1)",
        f"{path}:6: launcher: must be one of 'auto', 'gloo', 'mpi', 'srun'; did you mean 'mpi'? (got 'mpii')",
        f"{path}:8: resources.np: must be at least 1 (got 0)",
        f"{path}:9: resources.hosts[0]: must be 'hostname' or 'hostname:slots' with slots a whole number"
        " of at least 1 (got 'node1:0')",
        f"{path}:10: frobnicate: unknown key; valid keys at the top level: args, checkpoint, elastic, env,"
        " framework, horovod, launcher, name, resources, restarts, run_root, script, slurm, train, watchdog",
        "--set: train.epochs: must be a whole number (got 'two')",
    ]


@pytest.mark.parametrize(
    "body, expected",
    [
        ("train:\n  epochs: true\n", "train.epochs: must be a whole number (got True)"),
        ("train:\n  batch_size: 1.5\n", "train.batch_size: must be a whole number (got 1.5)"),
        ("train:\n  lr: .inf\n", "train.lr: must be a finite number (got inf)"),
        ("train:\n  validate: 'yes'\n", "train.validate: must be true or false (got 'yes')"),
        ("train: 5\n", "train: must be a mapping of keys (got 5)"),
        ("train:\n  model: [a]\n", "train.model: must be a string (got 'a list')"),
        ("train:\n  model_args: 3\n", "train.model_args: must be a mapping (got 3)"),
        ("train:\n  model: torch.nn\n", "train.model: must be a built-in name or 'package.module:function'"),
        ("train: {}\nrestarts: -1\n", "restarts: must be at least 0 (got -1)"),
        ("train: {}\nenv:\n  A: [1]\n", "env.A: must be a single value (a string or number) (got 'a list')"),
        ("train: {}\nenv:\n  A:\n", "env.A: needs a value (write '' for an empty string) (got None)"),
        ("train: {}\nenv:\n  MY-VAR: x\n", "env.MY-VAR: is not a valid environment variable name"),
        ("train: {}\nenv: [A=1]\n", "env: must be a mapping of NAME: value (got 'a list')"),
        ("train: {}\nname: my job\n", "name: must be letters, digits, '.', '_' or '-'"),
        ("train: {}\nhorovod:\n  log_level: verbose\n", "horovod.log_level: must be one of 'trace'"),
        ("train: {}\nhorovod:\n  network_interfaces: 'eth0, ib0'\n", None),
        ("train: {}\nslurm:\n  time: 90m\n", "slurm.time: must be a Slurm time"),
        ("train: {}\nslurm:\n  extra: [mail-type=END]\n", "slurm.extra[0]: must be an sbatch long option such as '--mail-type=END'"),
        ("train: {}\ncheckpoint:\n  keep: 0\n", "checkpoint.keep: must be at least 1 (got 0)"),
        ("train: {}\ncheckpoint:\n  interval_steps: 0\n", "checkpoint.interval_steps: must be at least 1"),
        ("script: train.py\nargs: --epochs 3\n", "args: must be a list of strings (got '--epochs 3')"),
        ("script: train.py\nargs: [--a, null]\n", "args[1]: must be a string (got None)"),
    ],
)
def test_single_value_rules(layout, body, expected):
    specs, _ = layout
    path = write(specs, "framework: torch\n" + body)
    if expected is None:
        assert load_spec(path, environ={}).horovod.network_interfaces == ("eth0", "ib0")
        return
    problems = problems_of(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:")
    assert expected in problems[0]


def test_framework_is_required(layout):
    specs, _ = layout
    path = write(specs, "# my job\ntrain: {}\n")
    assert problems_of(path) == [f"{path}:2: framework: is required: one of 'torch', 'tensorflow'"]


def test_script_or_train_exactly_one(layout):
    specs, _ = layout
    both = write(specs, "framework: torch\nscript: train.py\ntrain: {}\n", "both.yaml")
    (problem,) = problems_of(both)
    assert problem.startswith(f"{both}:3: train: cannot be used together with 'script' (line 2)")
    neither = write(specs, "framework: torch\n", "neither.yaml")
    (problem,) = problems_of(neither)
    assert problem.startswith(f"{neither}:1: script: is required unless 'train' is given")
    args = write(specs, "framework: torch\ntrain: {}\nargs: [-v]\n", "args.yaml")
    assert problems_of(args) == [f"{args}:3: args: is only used with 'script' (managed training takes no arguments)"]


def test_missing_script_and_hostfile_name_the_resolved_path(layout):
    specs, _ = layout
    path = write(specs, "framework: torch\nscript: nope.py\nresources:\n  hostfile: ../hosts\n")
    assert problems_of(path) == [
        f"{path}:2: script: no such file: {specs / 'nope.py'} (got 'nope.py')",
        f"{path}:4: resources.hostfile: no such file: {specs.parent / 'hosts'} (got '../hosts')",
    ]


def test_hosts_and_hostfile_are_alternatives(layout):
    specs, _ = layout
    path = write(specs, "framework: torch\ntrain: {}\nresources:\n  hostfile: hosts.txt\n  hosts: [a:2]\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:4: resources.hostfile: cannot be used together with resources.hosts (line 5)")
    # -H on the command line replaces the spec's hostfile instead of clashing with it
    spec = load_spec(path, [Override("resources.hosts", "c:2,d:2", "-H")], environ={})
    assert spec.resources.hosts == ("c:2", "d:2") and spec.resources.hostfile is None


def test_overrides(layout):
    specs, _ = layout
    path = write(specs, "framework: torch\ntrain:\n  lr: 0.1\nresources:\n  np: 2\n")
    spec = load_spec(path, [
        Override("resources.np", "4", "--np"),
        Override("train.lr", "0.5", "--set"),
        Override("train.lr", "0.25", "--set"),  # the later one wins
        Override("horovod.compression", "fp16", "--set"),
        Override("env", "{A: 1}", "--set"),
        Override("launcher", "gloo", "--launcher"),
    ], environ={})
    assert spec.resources.np == 4
    assert spec.train.lr == 0.25
    assert spec.horovod.compression == "fp16"
    assert spec.env == {"A": "1"}
    assert spec.launcher == "gloo"


def test_overrides_reach_into_env_and_builder_arguments(layout):
    specs, _ = layout
    path = write(specs, "framework: torch\ntrain: {}\nenv:\n  A: 1\n")
    spec = load_spec(path, [
        Override("env.B", "2", "--set"),
        Override("train.model_args.hidden", "[64, 32]", "--set"),
    ], environ={})
    assert spec.env == {"A": "1", "B": "2"}
    assert spec.train.model_args == {"hidden": [64, 32]}
    (problem,) = problems_of(path, [Override("env.2X", "1", "--set")])
    assert problem.startswith("--set: env.2X: is not a valid environment variable name")


@pytest.mark.parametrize(
    "override, expected",
    [
        (Override("resources.np", "0", "--np"), "--np: resources.np: must be at least 1 (got 0)"),
        (Override("resources.np", "abc", "--np"), "--np: resources.np: must be a whole number (got 'abc')"),
        (Override("launcher", "foo", "--launcher"), "--launcher: launcher: must be one of 'auto', 'gloo', 'mpi', 'srun' (got 'foo')"),
        (Override("train.epoch", "3", "--set"), "--set: train.epoch: unknown key; did you mean 'epochs'?"),
        (Override("train.lr.x", "3", "--set"), "--set: train.lr: is a single value; 'train.lr.x' reaches inside it"),
        (Override("train.lr", "[1", "--set"), "--set: train.lr: value is not valid YAML"),
        (Override("resources.hosts", "a:0", "-H"), "-H: resources.hosts[0]: must be 'hostname' or 'hostname:slots'"),
    ],
)
def test_bad_override_names_its_flag(layout, override, expected):
    specs, _ = layout
    path = write(specs, "framework: torch\ntrain: {}\n")
    (problem,) = problems_of(path, [override])
    assert problem.startswith(expected)


def test_elastic_rules(layout):
    specs, _ = layout
    discover = specs / "discover.sh"
    discover.write_text("#!/bin/sh\necho localhost:2\n")
    discover.chmod(0o755)
    ok = write(specs, "framework: torch\ntrain: {}\nelastic:\n  min_np: 2\n  max_np: 4\n"
                      "  discovery_script: discover.sh\n", "ok.yaml")
    assert load_spec(ok, environ={}).elastic.discovery_script == str(discover)
    bad = write(specs, "framework: torch\ntrain: {}\nresources:\n  np: 8\nelastic:\n  min_np: 4\n  max_np: 2\n",
                "bad.yaml")
    assert problems_of(bad) == [
        f"{bad}:4: resources.np: must lie between elastic.min_np (4) and elastic.max_np (2) (got 8)",
        f"{bad}:5: elastic: needs 'discovery_script' (prints 'host:slots' lines) or 'hostfile' (watched for changes)",
        f"{bad}:6: elastic.min_np: must not be larger than elastic.max_np (2) (got 4)",
    ]
    discover.chmod(0o644)
    (problem,) = problems_of(ok)
    assert problem == f"{ok}:6: elastic.discovery_script: is not executable (chmod +x {discover}) (got 'discover.sh')"


def test_resume_is_auto_never_or_an_existing_file(layout):
    specs, _ = layout
    (specs / "ckpt-100.pt").write_text("x")
    spec = load_spec(write(specs, "framework: torch\ntrain: {}\ncheckpoint:\n  resume: ckpt-100.pt\n"), environ={})
    assert spec.checkpoint.resume == str(specs / "ckpt-100.pt")
    path = write(specs, "framework: torch\ntrain: {}\ncheckpoint:\n  resume: atuo\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:4: checkpoint.resume: must be 'auto', 'never' or the path of an existing file")
    assert "did you mean 'auto'?" in problem


def test_file_name_that_cannot_be_a_job_name(layout):
    specs, _ = layout
    path = write(specs, "framework: torch\ntrain: {}\n", "my job.yaml")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:1: name: is not set, and the file name 'my job' cannot be a job name")
    assert load_spec(path, [Override("name", "my-job", "--set")], environ={}).name == "my-job"


def test_empty_and_non_mapping_files(layout):
    specs, _ = layout
    assert problems_of(write(specs, "", "empty.yaml")) == [
        f"{specs / 'empty.yaml'}: the file is empty; a job spec needs at least 'framework:' and 'script:' or 'train:'"
    ]
    (problem,) = problems_of(write(specs, "- framework: torch\n", "list.yaml"))
    assert problem.startswith(f"{specs / 'list.yaml'}:1: the top level must be a mapping")


def test_loaded_spec_round_trips_through_json_data(layout):
    specs, _ = layout
    path = write(specs, "framework: torch\ntrain:\n  model_args: {hidden: [64, 32]}\nenv: {A: 1}\n"
                        "resources:\n  hosts: [a:2]\n")
    spec = load_spec(path, environ={})
    assert JobSpec.from_dict(spec.to_dict()) == spec


def test_reference_spec_shows_every_default(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    spec = load_spec(JOBS / "reference.yaml", environ={})
    assert spec.train == TrainSpec()
    assert spec.horovod == HorovodSpec()
    assert spec.resources == ResourcesSpec()
    assert spec.slurm == SlurmSpec()
    assert spec.watchdog == WatchdogSpec()
    assert spec.checkpoint == CheckpointSpec(dir=str(tmp_path / "runs" / "reference" / "checkpoints"))
    defaults = JobSpec(framework="torch", name="reference")
    assert (spec.launcher, spec.env, spec.restarts, spec.args) == (
        defaults.launcher, defaults.env, defaults.restarts, defaults.args)


def test_minimal_example_loads(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    spec = load_spec(JOBS / "minimal.yaml", environ={})
    assert spec.managed and spec.name == "minimal"
