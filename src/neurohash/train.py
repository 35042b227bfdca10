"""The training job behind the root ``train.py``: fit, test, compare with the k-mer baseline, and
leave checkpoints, the resolved config, ``metrics.json`` and a plot in the run directory."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

from neurohash.checkpoint import build_module, load_module, stored_config
from neurohash.data.datamodule import EditDistanceDataModule
from neurohash.files import write_json
from neurohash.losses import MSEDistanceLoss
from neurohash.models.encoders import KmerEncoder
from neurohash.module import DistanceEmbeddingModule, embed_sequences
from neurohash.plots import plot_pred_vs_true
from neurohash.slurm import resume_from, slurm_trainer_arguments

log = logging.getLogger(__name__)


def build_training_module(cfg: DictConfig) -> DistanceEmbeddingModule:
    """The module of a training config, with its optimizer and learning-rate schedule."""
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    return build_module(stored_config(cfg), cfg.data.max_len, instantiate(cfg.optimizer), scheduler)


def kmer_baseline(datamodule: EditDistanceDataModule, cfg: DictConfig) -> dict[str, float]:
    """k-mer frequency baseline on the same test set: least-squares scale, no training; its
    SimHash codes are centred on the test profiles themselves."""
    module = DistanceEmbeddingModule(
        encoder=KmerEncoder(datamodule.max_len, cfg.baseline.k),
        geometry=instantiate(cfg.baseline.distance),
        loss=MSEDistanceLoss(),
        normaliser=datamodule.max_len,
    )
    loader = datamodule.train_dataloader()
    module.fit_scale(batch for _, batch in zip(range(32), loader, strict=False))
    emb = embed_sequences(module, datamodule.seqs["test"], datamodule.max_len)
    code_input = module.geometry.project(emb)
    module.hashing.fit_centre(code_input)  # its SimHash, centred on the profiles it compares
    with torch.no_grad():
        code_logits = module.hashing.eval().logits(code_input)
    metrics, _ = module.matrix_metrics(emb, code_logits, datamodule.exact_distances("test"))
    return metrics


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit and test one model; return the flat metrics dict that is written to metrics.json.

    Closes the job's W&B run, if any, so that the next job of the same process (Hydra multirun)
    opens its own run instead of logging into this one."""
    ok = False
    try:
        metrics = fit_and_test(cfg)
        ok = True
        return metrics
    finally:
        finish_wandb(exit_code=0 if ok else 1)


def finish_wandb(exit_code: int) -> None:
    """Finish the open W&B run; a no-op without one (no W&B logger, or a DDP rank other than 0).
    Lightning's WandbLogger never calls ``wandb.finish``."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)


def fit_and_test(cfg: DictConfig) -> dict[str, float]:
    """The training job itself (see ``train``)."""
    slurm = slurm_trainer_arguments()  # first: its signal handler must precede any worker
    L.seed_everything(cfg.seed, workers=True)
    if cfg.get("ckpt_path") not in (None, "hpc", "last"):
        load_module(cfg.ckpt_path)  # a bad file is one line naming it, before any data work
    output_dir = Path(cfg.paths.output_dir)
    datamodule: EditDistanceDataModule = instantiate(cfg.data)
    datamodule.setup("fit")
    module = build_training_module(cfg)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    callbacks += slurm.get("callbacks", [])
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    if not loggers:  # nothing to report learning rates to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=slurm.get("plugins")
    )
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from(trainer, cfg.get("ckpt_path")))
    train_time = time.perf_counter() - start
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    trainer.test(module, datamodule=datamodule, ckpt_path=best or None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    metrics.update({f"baseline/{k}": v for k, v in kmer_baseline(datamodule, cfg).items()})
    metrics.update(
        {
            "train/time_s": train_time,
            "train/epochs": trainer.current_epoch,
            "data/train_seqs": len(datamodule.seqs["train"]),
            "data/test_seqs": len(datamodule.seqs["test"]),
            "data/normaliser": datamodule.max_len,
        }
    )
    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        job_config = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
        OmegaConf.save(job_config, output_dir / "config.yaml", resolve=True)
        write_json(output_dir / "metrics.json", metrics)
        if module.test_pairs is not None:
            names = [node._target_.rsplit(".", 1)[-1] for node in (cfg.model, cfg.distance)]
            title = f"{names[0]} / {names[1]}: test %RMSE {metrics['test/rmse_pct']:.2f}"
            title += f" (k-mer baseline {metrics['baseline/rmse_pct']:.2f})"
            plot_pred_vs_true(*module.test_pairs, output_dir / "pred_vs_true.png", title)
    log.info("metrics: %s", json.dumps(metrics, indent=1))
    return metrics
