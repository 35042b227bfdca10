"""Encoders: what a sequence is embedded to does not depend on the batch it arrives in."""

from __future__ import annotations

import pytest
import torch

from neurohash.data.fasta import SequenceRecord
from neurohash.data.tokens import encode
from neurohash.models.encoders.transformer import TransformerEncoder

MAX_LEN = 152


@pytest.mark.parametrize("attention", ["global", "local"])
def test_transformer_embedding_is_independent_of_batch_mates(
    v4_records: list[SequenceRecord], attention: str
) -> None:
    """Full-length batches run with no attention mask (fused kernels); a batch with a short read
    needs one. Both paths must give a full-length read the same embedding."""
    torch.manual_seed(0)
    encoder = TransformerEncoder(128, MAX_LEN, attention=attention).eval()
    full = [r.seq[:MAX_LEN] for r in v4_records if len(r.seq) >= MAX_LEN][:3]
    short = full[0][:40]  # its last patches are padding only
    with torch.no_grad():
        alone = encoder(encode(full, MAX_LEN))
        mixed = encoder(encode([*full, short], MAX_LEN))
    assert encoder.needs_mask(torch.ones(1, encoder.n_patches, dtype=torch.bool)) == (
        attention == "local"
    )
    torch.testing.assert_close(mixed[:3], alone, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(mixed).all()
