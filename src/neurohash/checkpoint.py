"""Rebuild a trained model from a Lightning checkpoint, on any machine, without the run's Hydra."""

from __future__ import annotations

import os

import torch
from hydra.utils import instantiate

from neurohash.module import DistanceEmbeddingModule


def load_module(path: str | os.PathLike, map_location: str = "cpu") -> DistanceEmbeddingModule:
    """Instantiate encoder, geometry and loss from the config stored in the checkpoint."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such checkpoint")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    hparams = ckpt.get("hyper_parameters", {})
    config = hparams.get("config")
    if not config:
        raise ValueError(f"{path}: not a neurohash checkpoint (no stored model config)")
    module = DistanceEmbeddingModule(
        encoder=instantiate(config["model"]),
        geometry=instantiate(config["distance"]),
        loss=instantiate(config["loss"]),
        normaliser=hparams["normaliser"],
        config=config,
    )
    module.load_state_dict(ckpt["state_dict"])
    return module.eval()
