"""W&B sweeps (sweeps/*.yaml) and Hydra multirun, without a W&B account.

Each sweep file is expanded the way W&B does it: W&B's own sweep engine (the `sweeps` package that
the W&B server and `wandb.controller(local=True)` run) hands out the parameter sets, and wandb's
own agent helpers turn them into the command line. Every such command must compose; one runs end
to end under WANDB_MODE=offline, as the agent would start it.
"""

from __future__ import annotations

import functools
import json
import os
import struct
import subprocess
import sys
import warnings
from collections.abc import Iterator
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from sklearn.exceptions import ConvergenceWarning
from wandb.proto import wandb_internal_pb2
from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

from neurohash.train import train
from tests.helpers import compose_train, v4_cpu_run

with warnings.catch_warnings():  # sweeps 0.2 declares a pydantic-v1 config key
    warnings.simplefilter("ignore")
    import sweeps

ROOT = Path(__file__).resolve().parents[1]
SWEEP_FILES = sorted((ROOT / "sweeps").glob("*.yaml"))
SLURM_ENV = {"SLURM_NNODES": "2", "SLURM_NTASKS_PER_NODE": "4", "SLURM_JOB_ID": "4242"}
BAYES_SUGGESTIONS = 8

Args = dict[str, dict[str, Any]]  # an agent's command["args"]: {"distance": {"value": "cosine"}}


def load_sweep(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def sweep_runs(sweep: dict[str, Any], limit: int) -> list[Args]:
    """The parameter sets W&B's engine hands to agents: every grid point, or up to `limit` Bayesian
    suggestions, each run marked finished with a metric so the next is fitted on them."""
    runs: list[sweeps.SweepRun] = []
    while len(runs) < limit:
        with warnings.catch_warnings():  # the GP fit on made-up metrics may not converge
            warnings.simplefilter("ignore", ConvergenceWarning)
            run = sweeps.next_run(sweep, runs, validate=not runs)
        if run is None:  # grid exhausted
            break
        run.state = sweeps.RunState.finished
        run.summary_metrics = {sweep["metric"]["name"]: 10.0 - len(runs)}
        runs.append(run)
    # the server sends the agent JSON: plain Python numbers, not numpy scalars
    return [json.loads(json.dumps(run.config, default=lambda x: x.item())) for run in runs]


def agent_command(sweep: dict[str, Any], args: Args) -> list[str]:
    """The command line that `wandb agent` starts for one run (wandb_agent.Agent._command_run):
    ${envvar:NAME} from the environment, then the ${env} ${interpreter} ${program} ${args...}
    macros, each a whole item of `command:`."""
    template = create_sweep_command(list(sweep["command"]))
    macros = create_sweep_command_args({"args": args})
    macros |= {"env": ["/usr/bin/env"], "interpreter": ["python"], "program": [sweep["program"]]}
    command: list[str] = []
    for item in map(str, template):
        if item.startswith("${") and item.endswith("}"):
            command += [str(x) for x in macros.get(item[2:-1]) or []]
        else:
            command.append(item)
    return command


def train_overrides(command: list[str]) -> list[str]:
    """The Hydra overrides that train.py receives from one agent command. A SLURM command goes
    through `srun bash slurm/task.sh`, which is run here as rank 0 with `echo` as its python."""
    if command[0] != "srun":
        return command[command.index("train.py") + 1 :]
    env = dict(os.environ, SLURM_PROCID="0", NEUROHASH_PYTHON="echo")
    result = subprocess.run(command[1:], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    program, *overrides = result.stdout.split()
    assert program == "train.py", result.stdout
    return overrides


def assert_applied(cfg: DictConfig, args: Args) -> None:
    """Each swept key took its value: a config group by its choice, any other key by value."""
    choices = HydraConfig.get().runtime.choices
    for key, spec in args.items():
        if key in choices:
            assert choices[key] == spec["value"], (key, choices[key])
        else:
            assert OmegaConf.select(cfg, key) == pytest.approx(spec["value"]), key


@functools.cache
def agent_runs(path: Path) -> list[Args]:
    """The runs W&B hands out for one sweep file: the whole grid, or BAYES_SUGGESTIONS."""
    sweep = load_sweep(path)
    return sweep_runs(sweep, limit=BAYES_SUGGESTIONS if sweep["method"] == "bayes" else 1000)


def test_sweep_files_are_valid_wandb_sweeps() -> None:
    names = {path.name for path in SWEEP_FILES}
    assert {"distance_dim.yaml", "distance_dim_slurm.yaml"} <= names, names
    for path in SWEEP_FILES:
        sweep = load_sweep(path)
        assert sweeps.schema_violations_from_proposed_config(sweep) == [], path.name
        assert sweep["program"] == "train.py"
        assert "@hydra.main" in (ROOT / sweep["program"]).read_text()  # the Hydra entry point
        assert "${args_no_hyphens}" in sweep["command"], path.name  # Hydra rejects --key=value
        assert ("srun" in sweep["command"]) == path.stem.endswith("_slurm"), path.name
    methods = {load_sweep(path)["method"] for path in SWEEP_FILES}
    assert {"grid", "bayes"} <= methods


def test_grid_sweep_runs_every_combination() -> None:
    path = ROOT / "sweeps" / "distance_dim.yaml"
    values = {key: spec["values"] for key, spec in load_sweep(path)["parameters"].items()}
    points = [tuple(args[key]["value"] for key in values) for args in agent_runs(path)]
    assert len(points) == len(set(points))
    assert set(points) == set(product(*values.values()))


def test_bayes_sweep_suggests_points_inside_the_declared_space() -> None:
    path = ROOT / "sweeps" / "model_distance_dim_bayes.yaml"
    sweep, suggestions = load_sweep(path), agent_runs(path)
    assert len(suggestions) == BAYES_SUGGESTIONS
    for args in suggestions:
        assert args.keys() == sweep["parameters"].keys()
        for key, spec in sweep["parameters"].items():
            value = args[key]["value"]
            if "values" in spec:
                assert value in spec["values"], (key, value)
            else:
                assert spec["min"] <= value <= spec["max"], (key, value)


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.stem)
def test_every_agent_command_composes(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command an agent would run is a valid `python train.py ...` with the swept values."""
    for name, value in SLURM_ENV.items():
        monkeypatch.setenv(name, value)
    slurm = path.stem.endswith("_slurm")
    sweep, runs = load_sweep(path), agent_runs(path)
    assert runs
    for args in runs:
        command = agent_command(sweep, args)
        start = ["srun", "bash", "slurm/task.sh"] if slurm else ["/usr/bin/env", "python"]
        assert command[: len(start) + 1] == [*start, "train.py"], command
        overrides = train_overrides(command)
        cfg = compose_train(tmp_path, *overrides)
        OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
        assert_applied(cfg, args)
        assert "wandb" in cfg.logger
        if slurm:  # one DDP job over the allocation, in a directory of this job and point
            assert cfg.trainer.strategy == "ddp" and cfg.trainer.num_nodes == 2
            assert cfg.trainer.devices == 4
            run_dir = [o for o in overrides if o.startswith("hydra.run.dir=")][-1]
            assert run_dir.endswith("/slurm-4242/${hydra.job.override_dirname}"), run_dir
            point = ",".join(sorted(f"{key}={spec['value']}" for key, spec in args.items()))
            assert HydraConfig.get().job.override_dirname == point


# ---- end-to-end runs: real subprocesses on 200 real V4 reads, on CPU ----


def tiny_data(data: Path, cache_dir: Path) -> list[str]:
    """Overrides for a one-batch CPU run (small linear encoder) on 200 real V4 reads."""
    return [*v4_cpu_run(data, cache_dir, seqs=200, eval_size=30, batch_size=8), "model=linear"]


def offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with W&B offline and all its files under tmp_path, and `python` on PATH
    being this interpreter (the agent starts plain `python`)."""
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", **extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for name in ("DIR", "CACHE_DIR", "CONFIG_DIR", "DATA_DIR"):
        env[f"WANDB_{name}"] = str(tmp_path / "wandb_home" / name.lower())
    env.pop("WANDB_API_KEY", None)
    return env


def run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]


def wandb_records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    """Records of a run's .wandb file: W&B's LevelDB-style log (7-byte file header, then 32 KiB
    blocks of chunks with a 7-byte header each: crc32, length, type full/first/middle/last)."""
    data, block, pos, pending = path.read_bytes(), 32768, 7, b""
    assert data[:4] == b":W&B", path
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            yield wandb_internal_pb2.Record.FromString(pending)


def only_wandb_run(run_dir: Path) -> tuple[str, dict[str, Any], list[str]]:
    """The single offline W&B run of a job directory: its id, its config and its artifacts."""
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    run_id, config, artifacts = "", {}, []
    for record in wandb_records(next(runs[0].glob("run-*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind in ("run", "config"):
            run_id = record.run.run_id if kind == "run" else run_id
            items = record.run.config.update if kind == "run" else record.config.update
            config |= {item.key: json.loads(item.value_json) for item in items}
        elif kind == "artifact":
            artifacts.append(record.artifact.type)
    return run_id, config, artifacts


@pytest.mark.slow
def test_agent_command_runs_offline_with_ddp_as_one_wandb_run(
    v4_small: Path, tmp_path: Path
) -> None:
    """One grid command, started as `wandb agent` starts it (its WANDB_* variables, `python` on
    PATH), as a 2-process DDP job on CPU: one W&B run carrying the sweep values and the resolved
    Hydra config, the checkpoint staged as a `model` artifact for `wandb sync`."""
    path = ROOT / "sweeps" / "distance_dim.yaml"
    sweep = load_sweep(path)
    wanted = {"distance": {"value": "hyperbolic"}, "model.embedding_dim": {"value": 16}}
    args = next(args for args in agent_runs(path) if args == wanted)
    run_dir, run_id = tmp_path / "run", "sweeptestrun1"
    param_path = tmp_path / "sweep-params.yaml"  # what the agent writes before each run
    param_path.write_text(yaml.safe_dump(args))
    env = offline_env(
        tmp_path,
        WANDB_SWEEP_ID="offlinesweep",
        WANDB_RUN_ID=run_id,
        WANDB_SWEEP_PARAM_PATH=str(param_path),
    )
    command = agent_command(sweep, args) + tiny_data(v4_small, tmp_path / "cache")
    command += [
        "++trainer.strategy=ddp",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        f"hydra.run.dir={run_dir}",
    ]
    run(command, env)

    found_id, config, artifacts = only_wandb_run(run_dir)
    assert found_id == run_id
    assert not list((tmp_path / "wandb_home").rglob("offline-run-*"))  # no run outside the job
    # the swept keys stay as the sweep set them (W&B locks them), the rest is the resolved config
    assert config["distance"] == "hyperbolic" and config["model.embedding_dim"] == 16
    assert config["model"]["embedding_dim"] == 16
    assert config["model"]["_target_"] == "neurohash.models.encoders.LinearEncoder"
    assert config["data"]["max_len"] == 152 and config["trainer"]["devices"] == 2
    assert "model" in artifacts
    written = OmegaConf.load(run_dir / "config.yaml")
    assert written.distance._target_.endswith("Hyperbolic") and written.model.embedding_dim == 16


@pytest.mark.slow
def test_hydra_multirun_runs_every_combination(v4_small: Path, tmp_path: Path) -> None:
    """`python train.py -m distance=euclidean,hyperbolic model.embedding_dim=16,32`: the sweep
    path without W&B, four jobs, each with its own directory and outputs."""
    sweep_dir = tmp_path / "multirun"
    command = [sys.executable, "train.py", "-m", "distance=euclidean,hyperbolic"]
    command += ["model.embedding_dim=16,32", "debug=fdr", f"hydra.sweep.dir={sweep_dir}"]
    run(command + tiny_data(v4_small, tmp_path / "cache"), offline_env(tmp_path))

    jobs = sorted(path for path in sweep_dir.iterdir() if path.is_dir())
    assert [job.name for job in jobs] == ["0", "1", "2", "3"]
    done = set()
    for job in jobs:
        assert json.loads((job / "metrics.json").read_text())["test/rmse_pct"] >= 0
        cfg = OmegaConf.load(job / "config.yaml")
        done.add((cfg.distance._target_.rsplit(".", 1)[-1], cfg.model.embedding_dim))
    assert done == set(product(["Euclidean", "Hyperbolic"], [16, 32]))


@pytest.mark.slow
def test_jobs_in_one_process_each_get_their_own_wandb_run(
    v4_small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> None:
    """Hydra's multirun launcher runs its jobs one after another in one process (as here): each
    job must close its W&B run, or the next job's WandbLogger logs into it (pitfall 10)."""
    import wandb

    for name, value in offline_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    wandb.finish()  # a run left open by an earlier test in this process
    try:
        for distance in ("euclidean", "hyperbolic"):
            overrides = [f"distance={distance}", "logger=wandb", "debug=fdr"]
            job_dir = tmp_path / distance
            train(compose_train(job_dir, *tiny_data(v4_small, tmp_path / "cache"), *overrides))
    finally:
        wandb.finish()
        # finish() returns before W&B's service has written the offline .wandb file (wandb 0.31
        # left 5 of 20 files unflushed at that point); teardown waits for the service to exit
        wandb.teardown()
    for distance in ("euclidean", "hyperbolic"):
        _, config, _ = only_wandb_run(tmp_path / distance)
        assert config["distance"]["_target_"].lower().endswith(distance)
