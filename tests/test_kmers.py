"""neurohash.data.kmers: k-mer profiles, global and positional, on real reads."""

from __future__ import annotations

import torch

from neurohash.data.fasta import SequenceRecord
from neurohash.data.kmers import kmer_frequencies
from neurohash.data.tokens import encode
from neurohash.models.encoders.kmer import KmerEncoder


def test_positional_profiles_split_the_global_profile(v4_records: list[SequenceRecord]) -> None:
    """Each segment holds the k-mers starting in its part; together they are the whole profile."""
    seqs = [r.seq for r in v4_records[:8]]
    tokens = encode(seqs, 300)
    whole = kmer_frequencies(tokens, 4)
    parts = kmer_frequencies(tokens, 4, segments=3)
    assert parts.shape == (8, 3 * 4**4)
    torch.testing.assert_close(parts.view(8, 3, -1).sum(1), whole)
    assert (parts.view(8, 3, -1).sum(2) > 0.3).all()  # equal parts of each sequence, not of L


def test_positional_profile_depends_on_the_sequence_not_its_padding(
    v4_records: list[SequenceRecord],
) -> None:
    seq = v4_records[0].seq
    short, long = (kmer_frequencies(encode([seq], n), 5, segments=8) for n in (len(seq), 1600))
    torch.testing.assert_close(short, long)
    first = "ACGTA" + "C" * 60  # its one ACGTA starts the sequence: the first segment's
    profile = kmer_frequencies(encode([first], 100), 5, segments=4).view(4, -1)
    acgta = int("01230", 4)
    assert profile[0, acgta] > 0 and profile[1:, acgta].sum() == 0


def test_kmer_encoder_width_grows_with_segments() -> None:
    assert KmerEncoder(200, k=5).embedding_dim == 4**5
    assert KmerEncoder(200, k=5, segments=8).embedding_dim == 8 * 4**5
