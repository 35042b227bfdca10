"""Hash codes: the learned head's loss on a hand-made case, the balance term, SimHash's
determinism, and the packed layout FAISS reads."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from neurohash.hashing import (
    HashCoder,
    ItqHash,
    LearnedHash,
    NeighbourHash,
    RankHash,
    SignHash,
    hamming_matrix,
    pack_codes,
    weighted_hamming,
)


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


def test_weighted_hamming_counts_each_differing_bit_by_the_query_s_certainty() -> None:
    stored = pack_codes(torch.tensor([[True] * 8, [False] * 8, [True] * 4 + [False] * 4]))
    sure = np.full((3, 8), 2.0, dtype=np.float32)  # equal weights: the Hamming distance
    assert weighted_hamming(sure, stored).tolist() == [0, 8, 4]
    logits = np.array([[4.0, 1, 1, 1, 1, 1, 1, -2]], dtype=np.float32)  # mean |logit| 1.5
    one_query = np.repeat(logits, 3, axis=0)
    # the codes differ from its signs on bit 7; on bits 0-6; on bits 4-6
    assert weighted_hamming(one_query, stored) == pytest.approx([2 / 1.5, 10 / 1.5, 3 / 1.5])
    # the same query named by row instead of repeated: the same distances
    rows = np.zeros(3, dtype=np.int64)
    assert weighted_hamming(logits, stored, rows) == pytest.approx([2 / 1.5, 10 / 1.5, 3 / 1.5])
    codes = pack_codes(torch.from_numpy(one_query > 0))
    assert weighted_hamming(one_query, codes).tolist() == [0, 0, 0]  # its own code


def relaxed_identity(coder: LearnedHash) -> LearnedHash:
    """Head = identity, centring = identity (eval mode, fresh statistics), beta large: the
    relaxed codes are the signs of the embedding."""
    with torch.no_grad():
        coder.head.weight.copy_(torch.eye(coder.bits))
        coder.head.bias.zero_()
    coder.beta = 50.0
    return coder.eval()


def test_ranking_asks_for_nothing_when_codes_order_partners_as_the_truth() -> None:
    """Anchor 0 with partners 1 (true 0.1) and 2 (true 0.3): codes at Hamming fractions 0.25 and
    0.75 order them rightly (no loss); swapping the true distances makes the loss positive."""
    coder = relaxed_identity(RankHash(embedding_dim=4, bits=4, margin=0.02, distill=0.0))
    emb = torch.tensor([[1.0, 1, 1, 1], [1, 1, 1, -1], [1, -1, -1, -1]])
    pairs = torch.tensor([[0, 1], [0, 2]])
    hamming = coder.scaled_hamming(torch.sign(emb)[:, None], torch.sign(emb)[None])
    right = coder.ranking(hamming, pairs, torch.tensor([0.1, 0.3]))
    wrong = coder.ranking(hamming, pairs, torch.tensor([0.3, 0.1]))
    assert right.item() == pytest.approx(0.0, abs=1e-6)
    assert wrong.item() == pytest.approx(0.75 - 0.25 + 0.02, abs=1e-4)


def test_ranking_weighs_near_anchors_most() -> None:
    """Two anchors with the same wrong order: the one whose nearer partner is nearer counts
    exp((0.3 - 0.05) / tau) times more."""
    coder = RankHash(embedding_dim=4, bits=4, tau=0.05, margin=0.0)
    hamming = torch.tensor(
        [[0, 0.5, 0.1, 0, 0, 0], [0.5, 0, 0, 0, 0, 0], [0.1, 0, 0, 0, 0, 0]]
        + [[0, 0, 0, 0, 0.6, 0.2], [0, 0, 0, 0.6, 0, 0], [0, 0, 0, 0.2, 0, 0]]
    )
    pairs = torch.tensor([[0, 1], [0, 2], [3, 4], [3, 5]])
    only_near = coder.ranking(hamming, pairs[:2], torch.tensor([0.05, 0.4]))
    both = coder.ranking(hamming, pairs, torch.tensor([0.05, 0.4, 0.3, 0.5]))
    w_near, w_far = 1.0, math.exp(-(0.3 - 0.05) / 0.05)
    assert only_near.item() == pytest.approx(0.4, abs=1e-5)
    assert both.item() == pytest.approx((w_near * 0.4 + w_far * 0.4) / (w_near + w_far), rel=1e-4)


def test_distillation_is_zero_when_hamming_orders_as_the_teacher() -> None:
    coder = RankHash(embedding_dim=4, bits=4, tau=0.05)
    teacher = torch.tensor([[0.0, 0.1, 0.3], [0.1, 0.0, 0.2], [0.3, 0.2, 0.0]])
    assert coder.distillation(teacher, teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert coder.distillation(teacher.flip(1), teacher).item() > 0.1


def test_rank_hash_loss_is_finite_and_reaches_the_embedding_only_when_joint() -> None:
    emb = torch.randn(9, 8, requires_grad=True)
    pairs, true = torch.tensor([[0, 1], [0, 2], [3, 4], [5, 6]]), torch.tensor([0.1, 0.3, 0.2, 0.0])
    teacher = torch.rand(9, 9)
    loss = RankHash(8, 16, detach=True).loss(emb, pairs, true, teacher)
    assert torch.isfinite(loss)
    loss.backward()
    assert emb.grad is None
    RankHash(8, 16, detach=False).loss(emb, pairs, true, teacher).backward()
    assert emb.grad is not None and torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0


def euclidean(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.cdist(u, v)


def test_neighbour_bank_lists_each_point_s_nearest_others() -> None:
    """Points on a line: each one's nearest others are its neighbours on the line, never itself."""
    coder = NeighbourHash(1, 8, neighbours=2)
    coder.fill_bank(torch.arange(10.0)[:, None], euclidean, block=3)
    assert sorted(coder.lists[4].tolist()) == [3, 5]
    assert sorted(coder.lists[0].tolist()) == [1, 2]
    assert not (coder.lists == torch.arange(10)[:, None]).any()


def test_exact_lists_hand_the_model_s_list_distances_out_in_exact_order() -> None:
    """Point 4 on a line lists 3 and 5 (model distance 1 each) then 2 and 6 (2 each); if
    alignment says 6 is nearest, then 3, 5 and 2, the teacher sees 6 at 1 and 2 at 2, and the
    rest of the drawn matrix stays the model's. Without ``exact_lists`` the teacher is the
    model's distance alone."""
    emb = torch.arange(10.0)[:, None]
    coder = NeighbourHash(1, 8, neighbours=4, exact_lists=True)
    coder.fill_bank(emb, euclidean)
    exact = {3: 2, 5: 3, 2: 4, 6: 1}
    order = np.array([[exact.get(j, 9) for j in row] for row in coder.lists.tolist()])
    coder.order_lists(order)
    rows = torch.tensor([0, 2, 3, 4, 5, 6, 9])
    teacher = coder.teacher(rows, emb[rows])
    at = {int(r): i for i, r in enumerate(rows)}
    assert teacher[at[4], at[6]] == 1 and teacher[at[4], at[2]] == 2
    assert teacher[at[4], at[3]] == 1 and teacher[at[4], at[5]] == 2
    assert teacher[at[4], at[9]] == 5 and teacher[at[0], at[9]] == 9
    coder.exact_lists = False
    assert torch.equal(coder.teacher(rows, emb[rows]), euclidean(emb[rows], emb[rows]))


def test_neighbour_draws_hold_each_anchor_s_relatives_and_repeat_per_seed() -> None:
    emb = torch.arange(100.0)[:, None]
    coders = [NeighbourHash(1, 8, neighbours=4, anchors=3, per_anchor=5, others=2, seed=7)]
    coders.append(NeighbourHash(1, 8, neighbours=4, anchors=3, per_anchor=5, others=2, seed=7))
    for coder in coders:
        coder.fill_bank(emb, euclidean)
    first, second = coders[0].draw(), coders[1].draw()
    assert torch.equal(first, second)
    assert len(first) >= 5  # at least one anchor with its four nearest
    runs = (first[1:] - first[:-1] == 1).sum()
    assert runs >= 4  # an anchor's four nearest on a line sit next to it


def test_neighbour_hash_pickles_and_copies_with_its_draws() -> None:
    """The draws' generator travels as its state (a ``torch.Generator`` cannot cross
    ``torch.multiprocessing``: ``test_ddp``'s ddp_spawn run sends the default coder so), and the
    pickled or copied coder draws on from where it was."""
    coder = NeighbourHash(1, 8, neighbours=4, anchors=3, per_anchor=5, others=2, seed=7)
    coder.fill_bank(torch.arange(100.0)[:, None], euclidean)
    coder.draw()
    assert isinstance(coder.__getstate__()["generator"], bytes)
    sent, copied = pickle.loads(pickle.dumps(coder)), copy.deepcopy(coder)
    expected = coder.draw()
    assert torch.equal(sent.draw(), expected) and torch.equal(copied.draw(), expected)


@pytest.mark.parametrize("hidden", [0, 64])
def test_neighbour_hash_learns_the_teacher_s_nearest(hidden: int) -> None:
    """On a bank of overlapping clusters, the trained codes' Hamming nearest of each point is in
    its own cluster far more often than SimHash's at the same bits, with a linear head and with
    a hidden layer. Without a bank the loss is the light distance fit alone, and it stays
    finite."""
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(20, 16, generator=gen) * 3
    emb = centres.repeat_interleave(10, 0) + 2 * torch.randn(200, 16, generator=gen)
    torch.manual_seed(0)
    coder = NeighbourHash(
        16, 32, neighbours=9, anchors=16, per_anchor=6, others=32, tau=0.5, hidden=hidden
    )
    assert isinstance(coder.head, nn.Sequential) == bool(hidden)
    pairs, true = torch.tensor([[0, 1]]), torch.tensor([0.1])
    assert torch.isfinite(coder.loss(emb, pairs, true))
    coder.fill_bank(emb, euclidean)
    optimizer = torch.optim.Adam(coder.parameters(), lr=1e-2)
    for _ in range(200):
        loss = coder.loss(emb[:2], pairs, true)
        optimizer.zero_grad(), loss.backward(), optimizer.step()
    assert torch.isfinite(loss)

    def same_cluster(coder: HashCoder) -> float:
        coder.centre.running_mean.copy_(emb.mean(0))
        coder.centre.running_var.copy_(emb.var(0))
        codes = pack_codes(coder.eval().codes(emb))
        distance = hamming_matrix(codes, codes).astype(float)
        np.fill_diagonal(distance, np.inf)
        cluster = np.arange(200) // 10
        return float(np.mean(cluster[distance.argmin(1)] == cluster))

    assert same_cluster(coder) > same_cluster(SignHash(16, 32)) + 0.1


def test_itq_on_a_wide_embedding_uses_seeded_randomised_axes() -> None:
    """Above ``exact_axes`` dimensions the principal axes are a randomised PCA: orthonormal,
    the same for the same seed."""
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(300, 6, generator=gen) @ torch.randn(6, 40, generator=gen)
    coders = [ItqHash(40, 4, seed=3) for _ in range(2)]
    for coder in coders:
        coder.exact_axes = 16
        coder.loss(emb, torch.zeros(0, 2, dtype=torch.long), torch.zeros(0))
        coder.eval().refit()
    first, second = coders
    assert torch.equal(first.projection, second.projection)
    assert torch.allclose(first.projection.T @ first.projection, torch.eye(4), atol=1e-4)


def test_itq_rotation_quantises_better_than_its_start_and_repeats_per_seed() -> None:
    """On correlated data, ITQ's projection loses less to taking signs than the random start,
    is orthogonal (PCA axes times a rotation), and two coders of the same seed agree."""
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(2000, 8, generator=gen) @ torch.randn(8, 8, generator=gen)
    coders = [ItqHash(8, 8, sample=5000, seed=1) for _ in range(2)]
    for coder in coders:
        start = coder.projection.clone()
        for batch in emb.split(100):  # training batches: centring statistics and the sample
            coder.loss(batch, torch.zeros(0, 2, dtype=torch.long), torch.zeros(0))
        coder.eval()
        coder.refit()
        assert not coder.seen
    first, second = coders
    assert torch.equal(first.projection, second.projection)
    centred = first.centre(emb)

    def quantisation_error(projection: torch.Tensor) -> float:
        data = centred @ projection
        return float(((torch.sign(data) * data.abs().mean() - data) ** 2).mean())

    rotated = torch.linalg.qr(start).Q
    assert quantisation_error(first.projection) < quantisation_error(rotated)
    eye = first.projection.T @ first.projection
    assert torch.allclose(eye, torch.eye(8), atol=1e-4)
    assert torch.equal(first.codes(emb[:5]), second.codes(emb[:5]))
