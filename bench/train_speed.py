"""Training speed: pairs per second and wall time to reach a fixed validation %RMSE.

    python bench/train_speed.py [--quick] [--device cpu|cuda] [--target-rmse 5]
        [--steps N] [--val-every N] [--seqs N] [--out docs/benchmarks/train_speed.json]

The default model (``python train.py``: transformer, hyperbolic, MSE, learned hash) trained on
real V4 reads (max_len 152, NeuroSEED's Qiita stand-in) with the project's own data module,
module and Lightning trainer (``conf/train.yaml`` composed with the overrides below; on CUDA
``trainer=gpu``, i.e. bf16-mixed). A callback counts the supervised pairs of every step and
validates every ``--val-every`` steps; the training clock excludes validation. Reported:
pairs/s and sequences/s of training, and the training time until validation %RMSE first falls to
``--target-rmse`` and to each of ``MILESTONES`` (resolution: one validation interval), with the
%RMSE curve as a plot.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import lightning as L
from report import (
    RESULTS,
    ROOT,
    V4_READS,
    begin,
    missing_on_gpu,
    publish,
    save_figure,
    subplots,
    table,
)

MILESTONES = (2.0, 1.5, 1.3)  # validation %RMSE levels the report times, beside --target-rmse


class Clock(L.Callback):
    """Training time (validation excluded), pairs and sequences seen, and each validation."""

    def __init__(self) -> None:
        self.start = self.val_start = 0.0
        self.excluded = 0.0
        self.pairs = self.seqs = self.steps = 0
        self.curve: list[dict[str, float]] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.excluded

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.pairs += int(batch["pairs"].shape[0])
        self.seqs += int(batch["tokens"].shape[0])
        self.steps += 1

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.start and not trainer.sanity_checking:
            self.excluded += time.perf_counter() - self.val_start
            rmse = float(trainer.callback_metrics["val/rmse_pct"])
            point = {"step": self.steps, "train_s": self.elapsed(), "pairs": self.pairs}
            self.curve.append(point | {"val_rmse_pct": rmse})
            print(
                f"  step {self.steps}: val %RMSE {rmse:.2f} after {point['train_s']:.1f} s",
                flush=True,
            )


def overrides(args: argparse.Namespace, work: Path) -> list[str]:
    """``python train.py`` overrides of this benchmark (V4 reads, step-based validation)."""
    found = [
        "data=fasta",
        f"data.path={V4_READS}",
        "data.max_len=152",
        "data.cleaning.min_len=100",
        f"data.max_seqs={args.seqs}",
        # the coder's bank no larger than the sample: topping it up to 30,000 sequences from
        # outside it is a fixed cost before the first step (minutes on a CPU), not a speed
        f"hashing.bank={args.seqs}",
        f"data.eval_size={args.eval_size}",
        f"data.num_workers={args.workers}",
        f"data.batch_size={args.batch_size}",
        f"++trainer.max_steps={args.steps}",
        "trainer.max_epochs=-1",
        f"++trainer.val_check_interval={args.val_every}",
        "trainer.check_val_every_n_epoch=null",
        "trainer.enable_progress_bar=false",
        "++trainer.enable_checkpointing=false",
        "++trainer.num_sanity_val_steps=0",
        "callbacks=none",
        "logger=none",
        f"paths.root_dir={ROOT}",
        f"paths.output_dir={work}",
    ]
    found.append("trainer=gpu" if args.device == "cuda" else "trainer.accelerator=cpu")
    return found


def train(args: argparse.Namespace) -> tuple[Clock, dict[str, Any]]:
    """One training run with the clock attached; the clock and the data sizes."""
    from hydra.utils import instantiate

    from neurohash.hydra_app import compose_app
    from neurohash.train import build_training_module

    work = Path(args.workdir).resolve()
    cfg = compose_app("train", work, *overrides(args, work))
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    clock = Clock()
    trainer = instantiate(cfg.trainer, callbacks=[clock], logger=False)
    trainer.fit(build_training_module(cfg), datamodule=datamodule)
    sizes = {part: len(datamodule.seqs[part]) for part in ("train", "val")}
    return clock, sizes


def seconds_to(curve: list[dict[str, float]], target: float) -> float | None:
    """Training seconds at the first validation with %RMSE at or below ``target`` (or None)."""
    return next((p["train_s"] for p in curve if p["val_rmse_pct"] <= target), None)


def run(args: argparse.Namespace) -> dict[str, Any]:
    clock, sizes = train(args)
    train_s = clock.curve[-1]["train_s"] if clock.curve else clock.elapsed()
    return {
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "device": args.device,
        "sequences": sizes,
        "steps": clock.steps,
        "pairs": clock.pairs,
        "train_s": train_s,
        "pairs_per_s": clock.pairs / train_s,
        "seqs_per_s": clock.seqs / train_s,
        "target_rmse_pct": args.target_rmse,
        "time_to_target_s": seconds_to(clock.curve, args.target_rmse),
        "final_val_rmse_pct": clock.curve[-1]["val_rmse_pct"] if clock.curve else None,
        "curve": clock.curve,
    }


def plot(report: dict[str, Any], path: Path) -> Path:
    fig, ax = subplots(figsize=(6, 3.5))
    curve = report["curve"]
    ax.plot(
        [p["train_s"] for p in curve],
        [p["val_rmse_pct"] for p in curve],
        "o-",
        label=report["device"],
    )
    ax.axhline(report["target_rmse_pct"], color="k", ls="--", lw=1, label="target")
    ax.set_xlabel("training seconds (validation excluded)")
    ax.set_ylabel("validation %RMSE")
    ax.set_title("default transformer on V4 reads")
    ax.legend()
    return save_figure(fig, path)


def markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    targets = sorted({report["target_rmse_pct"], *MILESTONES}, reverse=True)
    lines = [
        f"## Training speed ({report['device']})",
        "",
        f"Default model on real V4 reads (max_len 152): {report['sequences']['train']:,} training "
        f"and {report['sequences']['val']:,} validation sequences, {cfg['batch_size']} triplets "
        f"per step, validation every {cfg['val_every']} steps (not counted in the training "
        "time). Seconds to a validation %RMSE: training time at the first validation at or "
        "below it.",
        "",
    ]
    reached = [seconds_to(report["curve"], target) for target in targets]
    rows = [
        [
            report["device"],
            f"{report['steps']:,}",
            f"{report['pairs']:,}",
            f"{report['train_s']:.1f}",
            f"{report['pairs_per_s']:,.0f}",
            f"{report['seqs_per_s']:,.0f}",
            f"{report['final_val_rmse_pct']:.2f}",
            *["not reached" if s is None else f"{s:.1f}" for s in reached],
        ]
    ]
    header = ["device", "steps", "pairs", "train s", "pairs/s", "seq/s", "final val %RMSE"]
    header += [f"s to {target:g}" for target in targets]
    lines.append(table(header, rows))
    lines += [f"\n![training curve](benchmarks/{p})" for p in report.get("plots", [])]
    return "\n".join(lines)


def pending(reports: list[dict[str, Any]]) -> list[str]:
    """What the issue asks of this benchmark that no report holds yet (for bench/report.py)."""
    return missing_on_gpu(
        reports,
        "training speed on a GPU: `python bench/train_speed.py --device cuda --out "
        "docs/benchmarks/train_speed_cuda.json`",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps on a small sample")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--target-rmse", type=float, default=5.0, help="validation %%RMSE goal")
    parser.add_argument("--steps", type=int, default=None, help="training steps")
    parser.add_argument("--val-every", type=int, default=None, help="steps between validations")
    parser.add_argument("--seqs", type=int, default=None, help="V4 reads (train + val + test)")
    parser.add_argument("--eval-size", type=int, default=None, help="val (and test) sequences")
    parser.add_argument("--batch-size", type=int, default=32, help="triplets per step")
    parser.add_argument("--workers", type=int, default=1, help="data-loading workers")
    parser.add_argument("--workdir", default="outputs/bench_train_speed")
    parser.add_argument("--out", default=str(RESULTS / "train_speed.json"), help="JSON report")
    args = parser.parse_args(argv)
    quick = {"steps": 60, "val_every": 20, "seqs": 1500, "eval_size": 150}
    full = {"steps": 1500, "val_every": 100, "seqs": 9200, "eval_size": 700}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    started, argv = begin(argv)
    args = parse_args(argv)
    return publish(__file__, argv, started, args.quick, run(args), args.out, markdown, plot)


if __name__ == "__main__":
    main()
