"""Hash codes: the learned head's loss on a hand-made case, the balance term, SimHash's
determinism, and the packed layout FAISS reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurohash.hashing import LearnedHash, SignHash, hamming_matrix, pack_codes


def test_learned_hash_loss_on_a_hand_made_case() -> None:
    """Two embeddings whose relaxed codes are exactly +1 and -1 on every bit (head = identity,
    no centring effect in eval mode with fresh statistics): Hamming fraction 1 for the pair."""
    coder = LearnedHash(embedding_dim=4, bits=4, quantization=0.0, balance=0.0, beta=50.0)
    with torch.no_grad():
        coder.head.weight.copy_(torch.eye(4))
        coder.head.bias.zero_()
    coder.eval()  # running statistics: mean 0, variance 1 -> centring is the identity
    emb = torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]])
    pairs = torch.tensor([[0, 1]])
    fit = coder.loss(emb, pairs, torch.tensor([1.0]))  # scale exp(0) = 1: 1 * 1 - 1 = 0
    assert fit.item() == pytest.approx(0.0, abs=1e-6)
    far = coder.loss(emb, pairs, torch.tensor([0.25]))  # (1 - 0.25)^2
    assert far.item() == pytest.approx(0.75**2, abs=1e-5)
    assert coder.codes(emb).tolist() == [[True] * 4, [False] * 4]


def test_balance_penalises_bits_that_never_flip() -> None:
    coder = LearnedHash(embedding_dim=2, bits=2, weight=0.0, quantization=0.0, balance=1.0)
    with torch.no_grad():
        coder.head.weight.copy_(torch.eye(2))
        coder.head.bias.copy_(torch.tensor([5.0, 0.0]))  # bit 0 is always on
    coder.eval()
    emb = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    penalty = coder.loss(emb, torch.tensor([[0, 1]]), torch.tensor([0.5])).item()
    bit0 = torch.tanh(torch.tensor([6.0, 4.0])).mean().item()  # mean of bit 0 over the batch
    assert penalty == pytest.approx(bit0**2 / 2, rel=1e-4)  # bit 1 is balanced: mean 0


def test_detached_head_leaves_the_embedding_alone() -> None:
    emb = torch.randn(6, 8, requires_grad=True)
    pairs, true = torch.tensor([[0, 1], [2, 3]]), torch.tensor([0.1, 0.3])
    LearnedHash(embedding_dim=8, bits=16, detach=True).loss(emb, pairs, true).backward()
    assert emb.grad is None
    LearnedHash(embedding_dim=8, bits=16, detach=False).loss(emb, pairs, true).backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0


def test_simhash_is_deterministic_per_seed() -> None:
    emb = torch.randn(20, 8, generator=torch.Generator().manual_seed(1))
    a, b, other = SignHash(8, 64, seed=3), SignHash(8, 64, seed=3), SignHash(8, 64, seed=4)
    for coder in (a, b, other):
        coder.eval()
    assert torch.equal(a.codes(emb), b.codes(emb))
    assert not torch.equal(a.codes(emb), other.codes(emb))
    assert a.codes(emb).shape == (20, 64) and a.codes(emb).dtype == torch.bool


def test_packed_codes_and_their_hamming_distances() -> None:
    codes = torch.zeros(2, 16, dtype=torch.bool)
    codes[0, 0] = True  # most significant bit of the first byte
    codes[1, 15] = True  # least significant bit of the second byte
    packed = pack_codes(codes)
    assert packed.tolist() == [[0b1000_0000, 0], [0, 1]]
    assert hamming_matrix(packed, packed).tolist() == [[0, 2], [2, 0]]
    assert packed.dtype == np.uint8
