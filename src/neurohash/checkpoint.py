"""Rebuild a trained model from a Lightning checkpoint, on any machine, without the run's Hydra."""

from __future__ import annotations

import hashlib
import json
import os

import torch
from hydra.utils import instantiate

from neurohash.data.cleaning import Cleaning
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
    encoder = instantiate(config["model"])
    hashing = instantiate(config["hashing"]) if config.get("hashing") else None
    module = DistanceEmbeddingModule(
        encoder=encoder,
        geometry=instantiate(config["distance"]),
        loss=instantiate(config["loss"]),
        normaliser=hparams["normaliser"],
        config=config,
        hashing=hashing(embedding_dim=encoder.embedding_dim) if hashing else None,
    )
    module.load_state_dict(ckpt["state_dict"])
    return module.eval()


def model_fingerprint(module: DistanceEmbeddingModule) -> str:
    """sha256 of the weights (names, dtypes, shapes, bytes) and stored config: the model's identity.

    Hash shards and databases are stamped with it, so codes from different models (which are not
    comparable) are never mixed. Independent of device and of the checkpoint file's layout.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    config = module.hparams.get("config", {})
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def stored_cleaning(module: DistanceEmbeddingModule, path: str) -> tuple[Cleaning, int]:
    """The checkpoint's cleaning settings and max_len, so input is prepared as in training.

    Raises ValueError naming ``path`` when the stored data settings cannot be read.
    """
    data = module.hparams.config["data"]
    fields = {k: v for k, v in (data.get("cleaning") or {}).items() if k != "_target_"}
    try:
        max_len, cleaning = int(data["max_len"]), Cleaning(**fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: stored data settings not understood ({exc})") from exc
    if cleaning.max_len is None or cleaning.max_len > max_len:  # as the datamodule does
        cleaning.max_len = max_len
    return cleaning, max_len
