"""Rebuild a trained model from a Lightning checkpoint, on any machine, without the run's Hydra."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from neurohash.data.cleaning import Cleaning
from neurohash.errors import NeurohashError, one_line
from neurohash.module import DistanceEmbeddingModule


class CheckpointError(NeurohashError):
    """A checkpoint that is missing, unreadable, or not a neurohash model: the message names it."""


def stored_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What a checkpoint carries to rebuild and evaluate the model: resolved, plain dicts."""

    def resolved(node: Any) -> Any:  # in place: a part may refer to the root (``${seed}``)
        return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node

    keep = {key: resolved(cfg[key]) for key in ("model", "distance", "loss", "hashing")}
    data = cfg["data"]
    keep["data"] = {"max_len": resolved(data["max_len"]), "cleaning": resolved(data["cleaning"])}
    return OmegaConf.to_container(OmegaConf.create(keep), resolve=True)


def build_module(
    config: Mapping[str, Any],
    normaliser: int,
    optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    scheduler: Callable[..., Any] | None = None,
) -> DistanceEmbeddingModule:
    """Encoder, geometry, loss and hash head instantiated from a stored ``config``.

    The one place a module is made from settings: training passes ``stored_config(cfg)`` with its
    optimizer, loading passes the config the checkpoint carries.
    """
    encoder = instantiate(config["model"])
    hashing = instantiate(config["hashing"]) if config.get("hashing") else None
    return DistanceEmbeddingModule(
        encoder=encoder,
        geometry=instantiate(config["distance"]),
        loss=instantiate(config["loss"]),
        normaliser=normaliser,
        optimizer=optimizer,
        scheduler=scheduler,
        config=dict(config),
        hashing=hashing(embedding_dim=encoder.embedding_dim) if hashing else None,
    )


def load_module(path: str | os.PathLike, map_location: str = "cpu") -> DistanceEmbeddingModule:
    """The trained module of a neurohash checkpoint, in eval mode; any failure is a
    ``CheckpointError`` naming ``path``."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises zip, pickle and runtime errors alike for a bad file
        raise CheckpointError(f"{path}: cannot load checkpoint ({one_line(exc)})") from exc
    hparams = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
    config = hparams.get("config")
    if not config or "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: not a neurohash checkpoint (no stored model config)")
    stored = ckpt.get(WEIGHTS_DIGEST)
    if stored is not None and weights_sha256(ckpt["state_dict"]) != stored:
        raise CheckpointError(
            f"{path}: the weights do not match the digest stored when it was saved (the file is "
            "corrupted); use another copy or retrain"
        )
    try:
        module = build_module(config, hparams["normaliser"])
        module.load_state_dict(ckpt["state_dict"])
    except Exception as exc:  # a config or weights this version cannot rebuild
        raise CheckpointError(
            f"{path}: cannot load checkpoint, the model cannot be rebuilt ({one_line(exc)}); "
            "retrain it with this version"
        ) from exc
    return module.eval()


WEIGHTS_DIGEST = "neurohash_weights_sha256"  # checkpoint key, written by the module on save


def hash_weights(digest: Any, state_dict: Mapping[str, torch.Tensor]) -> Any:
    """``digest`` updated with every tensor's name, dtype, shape and bytes, in name order."""
    for name, tensor in sorted(state_dict.items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest


def weights_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The digest a checkpoint stores at save time: torch does not check its zip CRCs, so bit
    flips in the weights would otherwise load silently."""
    return hash_weights(hashlib.sha256(), state_dict).hexdigest()


def model_fingerprint(module: DistanceEmbeddingModule) -> str:
    """sha256 of the weights (names, dtypes, shapes, bytes) and stored config: the model's identity.

    Hash shards and databases are stamped with it, so codes from different models (which are not
    comparable) are never mixed. Independent of device and of the checkpoint file's layout.
    """
    digest = hash_weights(hashlib.sha256(), module.state_dict())
    config = module.hparams.get("config", {})
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def stored_cleaning(module: DistanceEmbeddingModule, path: str) -> tuple[Cleaning, int]:
    """The checkpoint's cleaning settings and max_len, so input is prepared as in training.

    Raises a CheckpointError naming ``path`` when the stored data settings cannot be read.
    """
    data = module.hparams.get("config", {}).get("data")
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: checkpoint stores no data settings (max_len, cleaning)")
    fields = {k: v for k, v in (data.get("cleaning") or {}).items() if k != "_target_"}
    try:
        max_len, cleaning = int(data["max_len"]), Cleaning(**fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: stored data settings not understood ({exc})") from exc
    if cleaning.max_len is None or cleaning.max_len > max_len:  # as the datamodule does
        cleaning.max_len = max_len
    return cleaning, max_len
