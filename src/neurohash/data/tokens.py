"""Sequences -> integer tokens. 0 is padding (masked by every encoder), 1-4 are A/C/G/T, 5 is N."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

PAD = 0
VOCAB_SIZE = 6
_BASES = "ACGTN"
# byte -> token, for ``bytes.translate``; anything but A/C/G/T/N becomes PAD
_TABLE = bytes(_BASES.index(chr(b)) + 1 if chr(b) in _BASES else PAD for b in range(256))


def encode(seqs: Sequence[str], max_len: int, dtype: torch.dtype = torch.long) -> torch.Tensor:
    """Encode cleaned sequences as a (B, max_len) tensor, right-padded with PAD.

    Each row is one C-level ``bytes.translate``, so encoding is not the predict loop's
    bottleneck. ``dtype=torch.uint8`` gives tokens 8x smaller to move between processes and
    onto a GPU; ``DistanceEmbeddingModule`` widens them on the device.
    """
    rows = []
    for seq in seqs:
        if len(seq) > max_len:
            raise ValueError(f"sequence of length {len(seq)} exceeds max_len={max_len}")
        rows.append(seq.encode("ascii").translate(_TABLE).ljust(max_len, b"\0"))
    out = np.frombuffer(bytearray(b"".join(rows)), dtype=np.uint8).reshape(len(rows), max_len)
    return torch.from_numpy(out).to(dtype)
