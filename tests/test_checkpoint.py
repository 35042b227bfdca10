"""neurohash.checkpoint: a trained model comes back identical, and any unusable file is one
CheckpointError that starts with its path."""

from __future__ import annotations

import os
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from neurohash.checkpoint import (
    WEIGHTS_DIGEST,
    CheckpointError,
    load_module,
    model_fingerprint,
    stored_cleaning,
)
from neurohash.data.tokens import encode
from tests.helpers import TINY_MAX_LEN


def test_round_trip_gives_the_same_model(checkpoint: Path) -> None:
    a, b = load_module(checkpoint), load_module(checkpoint)
    assert not a.training and model_fingerprint(a) == model_fingerprint(b)
    tokens = encode(["ACGTACGTTGCA", "GGGTTTAAACCC"], TINY_MAX_LEN)
    with torch.no_grad():
        assert torch.equal(a(tokens), b(tokens))
    stored = torch.load(checkpoint, map_location="cpu", weights_only=False)
    for name, value in a.state_dict().items():
        assert torch.equal(value, stored["state_dict"][name]), name
    cleaning, max_len = stored_cleaning(a, str(checkpoint))
    assert max_len == TINY_MAX_LEN and cleaning.max_len == TINY_MAX_LEN


def test_unusable_files_are_one_error_naming_them(tmp_path: Path) -> None:
    missing = tmp_path / "missing.ckpt"
    with pytest.raises(CheckpointError, match=f"^{missing}: no such checkpoint"):
        load_module(missing)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match=f"^{garbage}: cannot load checkpoint"):
        load_module(garbage)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, other)
    with pytest.raises(CheckpointError, match=f"^{other}: not a neurohash checkpoint"):
        load_module(other)


def test_a_config_this_version_cannot_build_says_so(checkpoint: Path, tmp_path: Path) -> None:
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    ckpt["hyper_parameters"]["config"]["model"]["_target_"] = "neurohash.models.Gone"
    moved = tmp_path / "moved.ckpt"
    torch.save(ckpt, moved)
    with pytest.raises(CheckpointError, match=f"^{moved}: cannot load checkpoint.*retrain"):
        load_module(moved)


def flip_a_weight_byte(path: Path) -> None:
    """Flip one byte inside the largest tensor's data in the checkpoint's zip, as a bad disk
    would: torch does not check the zip's CRCs, so only the stored digest can notice."""
    with zipfile.ZipFile(path) as archive:
        entries = [i for i in archive.infolist() if "/data/" in i.filename]
    info = max(entries, key=lambda i: i.file_size)
    with open(path, "r+b") as handle:
        handle.seek(info.header_offset)
        name_len, extra_len = struct.unpack("<HH", handle.read(30)[26:30])
        handle.seek(info.header_offset + 30 + name_len + extra_len + info.file_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x40]))


def test_a_bit_flip_in_the_weights_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    """A flipped bit once loaded silently (%RMSE 13 -> 98)."""
    damaged = tmp_path / "damaged.ckpt"
    shutil.copy(checkpoint, damaged)
    assert WEIGHTS_DIGEST in torch.load(checkpoint, map_location="cpu", weights_only=False)
    flip_a_weight_byte(damaged)
    torch.load(damaged, map_location="cpu", weights_only=False)  # torch loads it as it is
    with pytest.raises(CheckpointError, match=f"^{damaged}: the weights do not match"):
        load_module(damaged)
