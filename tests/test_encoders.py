"""Encoders: what a sequence is embedded to does not depend on the batch it arrives in."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from neurohash.data.fasta import SequenceRecord
from neurohash.data.tokens import encode
from neurohash.models.encoders.base import N_SYMBOLS, one_hot
from neurohash.models.encoders.gru import GRUEncoder
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


@pytest.mark.parametrize("layers", [1, 2])
def test_gru_equals_torch_bidirectional_gru_over_packed_sequences(
    v4_records: list[SequenceRecord], layers: int
) -> None:
    """The encoder runs each direction over the padded batch. Given the weights of an
    nn.GRU(bidirectional=True), as checkpoints from before held them, it must give what that GRU
    gives over a PackedSequence, which never reads padding."""
    torch.manual_seed(0)
    reference = nn.GRU(N_SYMBOLS, 8, num_layers=layers, batch_first=True, bidirectional=True)
    readout = nn.Linear(16, 16)
    encoder = GRUEncoder(16, MAX_LEN, hidden=8, layers=layers)
    old_checkpoint = {f"gru.{k}": v for k, v in reference.state_dict().items()}
    encoder.load_state_dict(
        {**old_checkpoint, **{f"readout.{k}": v for k, v in readout.state_dict().items()}}
    )

    tokens = encode([r.seq for r in v4_records[:12]] + ["ACGT", "G"], MAX_LEN)
    lengths = encoder.mask(tokens).sum(1)
    assert lengths.min() < lengths.max() < MAX_LEN + 1  # padding of several lengths
    packed = pack_padded_sequence(one_hot(tokens), lengths, batch_first=True, enforce_sorted=False)
    _, final = reference(packed)
    expected = readout(torch.cat([final[-2], final[-1]], dim=-1))
    torch.testing.assert_close(encoder(tokens), expected, rtol=1e-5, atol=1e-5)
