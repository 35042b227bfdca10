"""Sequences -> integer tokens. 0 is padding (masked by every encoder), 1-4 are A/C/G/T, 5 is N."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

PAD = 0
VOCAB_SIZE = 6
_TABLE = np.zeros(256, dtype=np.int64)
for _i, _base in enumerate("ACGTN", start=1):
    _TABLE[ord(_base)] = _i


def encode(seqs: Sequence[str], max_len: int) -> torch.Tensor:
    """Encode cleaned sequences as a (B, max_len) LongTensor, right-padded with PAD."""
    out = np.zeros((len(seqs), max_len), dtype=np.int64)
    for row, seq in enumerate(seqs):
        if len(seq) > max_len:
            raise ValueError(f"sequence of length {len(seq)} exceeds max_len={max_len}")
        out[row, : len(seq)] = _TABLE[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
    return torch.from_numpy(out)
