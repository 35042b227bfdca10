"""Binary hash codes of embeddings, whose Hamming distance tracks edit distance.

Both first centre and whiten the embeddings per dimension (a BatchNorm without affine terms,
running statistics updated while the model trains): related sequences share a large common
offset that distances ignore but signs do not, and without centring most bits are the same for
every sequence.

- ``LearnedHash``: a hash head (linear, or with ``hidden`` units one GELU layer) trained with the
  embedding. Codes are relaxed as tanh(beta * head(e)); the relaxed Hamming fraction
  (1 - <c_i, c_j> / bits) / 2, times a learned scale, is fitted to ED / L by MSE; a quantisation
  penalty mean((|c| - 1)^2) pulls the relaxed codes to +-1 so that taking signs at inference
  changes little, and a balance penalty (the squared batch mean of each bit) keeps every bit
  split about evenly, so no bit is wasted. With ``detach`` (the default) the hash loss trains
  only the head: trained jointly it pulled the embedding towards codes and cost about 0.8 points
  of distance %RMSE on Greengenes.
- ``RankHash``: the learned head trained for retrieval, the order of neighbours rather than their
  distances. Two terms, each weighted toward a sequence's nearest: a margin ranking of every
  sequence's supervised partners by exact distance (the batch's triplet and cross pairs), and a
  listwise distillation of the model's own float distances over the whole batch (a softmax over
  each row, sharp enough to care about the nearest few) into the relaxed Hamming distances. The
  distance fit of ``LearnedHash`` stays, lighter, so Hamming distances still convert to edits.
- ``NeighbourHash``: the learned head distilled from the model's own neighbour lists over a bank
  of training sequences (up to 30,000), not over one batch: a batch of a few dozen sequences
  holds almost none of a sequence's nearest relatives among thousands, which are what a search
  must tell apart. Each step draws anchors from the bank with their nearest relatives (by the
  model's float distance) and random others, and fits the softmax of the relaxed Hamming
  distances (with a learned spread) to the softmax of the model's distances, row by row. With
  ``exact_lists`` each bank sequence's list is put in the order of exact edit distance (the
  model's distances handed out in that order, so the scale stays the model's): the model's float
  order of the nearest few is often wrong, and the codes would learn its mistakes.
- ``ItqHash``: iterative quantisation (Gong & Lazebnik): the centred embedding is projected on
  its principal axes (a seeded randomised PCA for embeddings wider than 2,048 dimensions, such as
  k-mer profiles; a seeded random expansion when there are more bits than dimensions) and
  rotated so that taking signs loses the least; refitted on recent training embeddings at each
  validation, with no gradient.
- ``SignHash``: SimHash, the untrained baseline: signs of a fixed seeded Gaussian projection of the
  centred embedding; the Hamming fraction estimates the angle between centred embeddings.

Any coder reads the model's embedding, or with ``features`` (``Features``) its own untrained view
of the tokens: positional 5-mer profiles under the default ``hashing=neighbours``. The best codes
measured come from those profiles, not from the CPU-budget transformer's embedding (which finds
fewer of a query's exact top 10 than the profiles do), so the model's codes need not be bounded
by its distance embedding.

Codes are bool tensors (B, bits); ``pack_codes`` turns them into bytes for storage and FAISS.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from neurohash.models.encoders.base import Encoder
from neurohash.models.geometry import Geometry


class Features(nn.Module):
    """What a coder reads instead of the model's embedding: an ``encoder`` of the tokens with
    nothing to train (positional k-mer profiles) and the ``distance`` between its outputs, whose
    scale the module fits to ED / L at fit start, as it fits its own geometry's (the teacher of
    coders that distil neighbour lists is this distance)."""

    def __init__(self, encoder: Encoder, distance: Geometry) -> None:
        super().__init__()
        self.encoder, self.distance = encoder, distance
        self.embedding_dim = encoder.embedding_dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, D) features of (B, L) tokens (``distance.project`` maps them into its space)."""
        return self.encoder(tokens.long()).float()


class HashCoder(nn.Module):
    """Interface: ``logits`` (B x bits; their signs are the ``codes``) and a training ``loss``
    on a batch's embeddings, its (P, 2) pairs with their true normalised distances and, for
    coders that set ``needs_teacher``, the model's own (B, B) distances between the batch's
    embeddings. With ``features`` the coder reads those instead of the model's embedding
    (``embedding_dim`` is then theirs), and its teacher is their distance."""

    needs_teacher = False
    needs_bank = False

    def __init__(self, embedding_dim: int, bits: int, features: Features | None = None) -> None:
        super().__init__()
        self.bits, self.features = bits, features
        self.input_dim = features.embedding_dim if features is not None else embedding_dim
        self.centre = nn.BatchNorm1d(self.input_dim, affine=False)

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        """(B, bits) real scores whose signs are the codes; their magnitudes say how sure each
        bit is (a query's weights in ``neurohash.index.search``'s code refine)."""
        raise NotImplementedError

    def codes(self, emb: torch.Tensor) -> torch.Tensor:
        return self.logits(emb) > 0

    @torch.no_grad()
    def fit_centre(self, emb: torch.Tensor) -> None:
        """Centre and whiten on (N, D) inputs as the coder reads them: their mean and variance,
        for a coder that never trained (a baseline scored on the sequences it compares)."""
        self.centre.running_mean.copy_(emb.mean(0))
        self.centre.running_var.copy_(emb.var(0, unbiased=False))

    def loss(
        self,
        emb: torch.Tensor,
        pairs: torch.Tensor,
        true: torch.Tensor,
        teacher: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Untrained coders only update the centring statistics."""
        self.centre(emb.float())
        return emb.new_zeros(())

    def refit(self) -> None:
        """Called before each validation of a training run: coders fitted without gradients
        (ITQ) update themselves here."""


def hash_head(embedding_dim: int, bits: int, hidden: int) -> nn.Module:
    """Linear (``hidden`` = 0), or one hidden GELU layer for more capacity (512 units in
    hashing=neighbours, the default). On positional 5-mer profiles (experiment=codes_kmer) at 128
    bits 512 hidden units found more of a query's exact top 10 by Hamming alone but a little less
    after the search's re-rank; 256 bits under it are the best codes measured (README)."""
    if not hidden:
        return nn.Linear(embedding_dim, bits)
    return nn.Sequential(nn.Linear(embedding_dim, hidden), nn.GELU(), nn.Linear(hidden, bits))


class LearnedHash(HashCoder):
    def __init__(
        self,
        embedding_dim: int,
        bits: int = 128,
        weight: float = 1.0,
        quantization: float = 0.1,
        beta: float = 1.0,
        balance: float = 0.1,
        detach: bool = True,
        hidden: int = 0,
        features: Features | None = None,
    ) -> None:
        super().__init__(embedding_dim, bits, features)
        self.weight, self.quantization, self.beta = weight, quantization, beta
        self.balance, self.detach = balance, detach
        self.head = hash_head(self.input_dim, bits, hidden)
        self.log_scale = nn.Parameter(torch.tensor(0.0))

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        return self.head(self.centre(emb.float()))

    def relaxed(self, emb: torch.Tensor) -> torch.Tensor:
        if self.detach:  # the head learns from the embedding without pulling it towards codes
            emb = emb.detach()
        return torch.tanh(self.beta * self.logits(emb))

    def regularisers(self, relaxed: torch.Tensor) -> torch.Tensor:
        quant = torch.mean((relaxed.abs() - 1) ** 2)
        balance = torch.mean(relaxed.mean(0) ** 2)
        return self.quantization * quant + self.balance * balance

    def scaled_hamming(self, ca: torch.Tensor, cb: torch.Tensor) -> torch.Tensor:
        """Relaxed Hamming fraction times the learned scale: an estimate of ED / L."""
        return self.log_scale.exp() * (1 - (ca * cb).sum(-1) / self.bits) / 2

    def loss(
        self,
        emb: torch.Tensor,
        pairs: torch.Tensor,
        true: torch.Tensor,
        teacher: torch.Tensor | None = None,
    ) -> torch.Tensor:
        relaxed = self.relaxed(emb)
        hamming = self.scaled_hamming(relaxed[pairs[:, 0]], relaxed[pairs[:, 1]])
        fit = torch.mean((hamming - true) ** 2)
        return self.weight * fit + self.regularisers(relaxed)


class RankHash(LearnedHash):
    """A hash head trained to order neighbours (see the module docstring). ``tau`` (in ED / L)
    sets how fast a partner's weight falls with its distance, in both terms; ``margin`` is the
    largest gap the ranking asks for (a smaller true gap asks for itself)."""

    needs_teacher = True

    def __init__(
        self,
        embedding_dim: int,
        bits: int = 128,
        weight: float = 0.1,
        rank: float = 1.0,
        distill: float = 1.0,
        tau: float = 0.05,
        margin: float = 0.02,
        quantization: float = 0.1,
        beta: float = 1.0,
        balance: float = 0.1,
        detach: bool = True,
        hidden: int = 0,
        features: Features | None = None,
    ) -> None:
        super().__init__(
            embedding_dim, bits, weight, quantization, beta, balance, detach, hidden, features
        )
        self.rank, self.distill, self.tau, self.margin = rank, distill, tau, margin

    def loss(
        self,
        emb: torch.Tensor,
        pairs: torch.Tensor,
        true: torch.Tensor,
        teacher: torch.Tensor | None = None,
    ) -> torch.Tensor:
        relaxed = self.relaxed(emb)
        hamming = self.scaled_hamming(relaxed[:, None, :], relaxed[None, :, :])  # (B, B)
        fit = torch.mean((hamming[pairs[:, 0], pairs[:, 1]] - true) ** 2)
        total = self.weight * fit + self.regularisers(relaxed)
        total = total + self.rank * self.ranking(hamming, pairs, true)
        if teacher is not None:
            total = total + self.distill * self.distillation(hamming, teacher.detach().float())
        return total

    def ranking(
        self, hamming: torch.Tensor, pairs: torch.Tensor, true: torch.Tensor
    ) -> torch.Tensor:
        """Hinge on every (anchor, nearer partner, farther partner) among the supervised pairs,
        weighted by exp(-d(anchor, nearer) / tau)."""
        n = len(hamming)
        known = torch.full((n, n), float("nan"), device=hamming.device)
        known[pairs[:, 0], pairs[:, 1]] = true.float()
        known[pairs[:, 1], pairs[:, 0]] = true.float()
        near, far = known[:, :, None], known[:, None, :]  # anchor i, partners j (near), k (far)
        valid = (near < far) & ~near.isnan() & ~far.isnan()
        gap = torch.clamp(far - near, max=self.margin)
        hinge = torch.relu(hamming[:, :, None] - hamming[:, None, :] + gap)
        weight = torch.exp(-near / self.tau)
        weight = torch.where(valid, weight, torch.zeros_like(weight))
        return (weight * torch.nan_to_num(hinge)).sum() / weight.sum().clamp(min=1e-12)

    def distillation(self, hamming: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return listwise_distillation(hamming, teacher, self.tau)


def listwise_distillation(student: torch.Tensor, teacher: torch.Tensor, tau: float) -> torch.Tensor:
    """KL divergence, per row of (N, N) distances, from softmax(-teacher / tau) to
    softmax(-student / tau), the diagonal left out."""
    eye = torch.eye(len(student), dtype=torch.bool, device=student.device)
    target = torch.softmax((-teacher / tau).masked_fill(eye, -math.inf), dim=1)
    log_student = torch.log_softmax((-student / tau).masked_fill(eye, -math.inf), dim=1)
    kl = target * (torch.log(target.clamp(min=1e-12)) - log_student.masked_fill(eye, 0.0))
    return kl.sum(1).mean()


Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class NeighbourHash(LearnedHash):
    """A hash head distilled from the model's neighbour lists over a bank of training embeddings
    (see the module docstring). The module fills the bank (``fill_bank``) with up to ``bank``
    training embeddings and the model's distance; each step then draws ``anchors`` sequences,
    ``per_anchor`` - 1 of each one's ``neighbours`` nearest, and ``others`` at random. ``tau``
    (in ED / L, the teacher's units) sets how sharply the teacher's softmax favours the nearest;
    the student's Hamming fractions are scaled by a learned spread. The light distance fit of
    ``LearnedHash`` on the batch's pairs stays, so Hamming distances still convert to edits.
    ``exact_lists`` asks the module for each list's exact edit distances (``order_lists``)."""

    needs_bank = True

    def __init__(
        self,
        embedding_dim: int,
        bits: int = 128,
        bank: int = 30_000,
        neighbours: int = 32,
        anchors: int = 64,
        per_anchor: int = 16,
        others: int = 256,
        tau: float = 0.02,
        weight: float = 0.1,
        quantization: float = 0.1,
        beta: float = 1.0,
        balance: float = 0.1,
        seed: int = 0,
        exact_lists: bool = False,
        hidden: int = 0,
        features: Features | None = None,
    ) -> None:
        super().__init__(
            embedding_dim, bits, weight, quantization, beta, balance, True, hidden, features
        )
        self.bank_size, self.neighbours, self.tau = bank, neighbours, tau
        self.exact_lists = exact_lists
        self.anchors, self.per_anchor, self.others = anchors, per_anchor, others
        self.log_spread = nn.Parameter(torch.tensor(0.0))
        self.generator = torch.Generator().manual_seed(seed)
        self.bank: torch.Tensor | None = None
        self.lists: torch.Tensor | None = None
        self.listed: torch.Tensor | None = None  # teacher distances of (row, its list)
        self.distance: Distance | None = None

    def __getstate__(self) -> dict[str, Any]:
        """The draws' generator travels as its state: a ``torch.Generator`` itself cannot cross
        ``torch.multiprocessing`` (``trainer.strategy=ddp_spawn`` pickles the module)."""
        return {**self.__dict__, "generator": self.generator.get_state().numpy().tobytes()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        generator = torch.Generator()
        generator.set_state(torch.frombuffer(bytearray(state["generator"]), dtype=torch.uint8))
        super().__setstate__({**state, "generator": generator})

    @torch.no_grad()
    def fill_bank(self, emb: torch.Tensor, distance: Distance, block: int = 1024) -> None:
        """Keep (N, D) embeddings and, for each, its ``neighbours`` nearest others by
        ``distance`` (the model's, on embeddings as the coder sees them)."""
        count = min(self.neighbours, len(emb) - 1)
        lists, listed = [], []
        for start in range(0, len(emb), block):
            d = distance(emb[start : start + block], emb)
            rows = torch.arange(len(d), device=d.device)
            d[rows, rows + start] = math.inf  # a sequence is not its own neighbour
            nearest = torch.topk(d, count, dim=1, largest=False)
            lists.append(nearest.indices.cpu())
            listed.append(nearest.values.float().cpu())
        self.bank, self.distance = emb, distance
        self.lists, self.listed = torch.cat(lists), torch.cat(listed)

    def order_lists(self, exact: np.ndarray) -> None:
        """Reorder the teacher's view of each list by ``exact`` (N, neighbours) edit distances of
        each bank row to its listed neighbours: the list's model distances, ascending, are
        handed out in exact order (ties keep the model's order), so the teacher ranks a
        sequence's nearest as alignment does at the model's scale."""
        exact = torch.as_tensor(exact, dtype=torch.float64)
        order = torch.argsort(exact, dim=1, stable=True)
        self.listed = torch.empty_like(self.listed).scatter_(1, order, self.listed)

    def teacher(self, rows: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """The model's distances among the drawn bank ``rows`` (sorted, as ``draw`` returns
        them); under ``exact_lists`` each row's listed neighbours take their list distances in
        exact order (``order_lists``)."""
        teacher = self.distance(emb, emb).float()
        if not self.exact_lists:
            return teacher
        lists = self.lists[rows]
        at = torch.searchsorted(rows, lists).clamp(max=len(rows) - 1)
        drawn = rows[at] == lists
        anchor = torch.arange(len(rows)).unsqueeze(1).expand_as(lists)
        device = teacher.device
        listed = self.listed[rows][drawn].to(device)
        teacher[anchor[drawn].to(device), at[drawn].to(device)] = listed
        return teacher

    def draw(self) -> torch.Tensor:
        """Bank rows of one step: anchors, some of their nearest, random others (seeded)."""
        n, g = len(self.bank), self.generator
        anchors = torch.randint(n, (self.anchors,), generator=g)
        columns = torch.randperm(self.lists.shape[1], generator=g)[: self.per_anchor - 1]
        others = torch.randint(n, (self.others,), generator=g)
        return torch.unique(torch.cat([anchors, self.lists[anchors][:, columns].ravel(), others]))

    def neighbourhood_loss(self) -> torch.Tensor:
        rows = self.draw()
        emb = self.bank[rows.to(self.bank.device)]
        with torch.no_grad():
            teacher = self.teacher(rows, emb)
        relaxed = self.relaxed(emb)
        fraction = (1 - relaxed @ relaxed.T / self.bits) / 2
        student = self.log_spread.exp() * fraction
        return listwise_distillation(student, teacher, self.tau) + self.regularisers(relaxed)

    def loss(
        self,
        emb: torch.Tensor,
        pairs: torch.Tensor,
        true: torch.Tensor,
        teacher: torch.Tensor | None = None,
    ) -> torch.Tensor:
        total = super().loss(emb, pairs, true)
        if self.bank is not None:
            total = total + self.neighbourhood_loss()
        return total


class ItqHash(HashCoder):
    """Iterative quantisation of the centred embedding, refitted on the last ``sample`` training
    embeddings at each validation (``iterations`` alternations of signs and rotation)."""

    exact_axes = 2048  # widest embedding whose principal axes come from a full eigendecomposition

    def __init__(
        self,
        embedding_dim: int,
        bits: int = 128,
        sample: int = 20_000,
        iterations: int = 50,
        seed: int = 0,
        features: Features | None = None,
    ) -> None:
        super().__init__(embedding_dim, bits, features)
        self.sample, self.iterations, self.seed = sample, iterations, seed
        gen = torch.Generator().manual_seed(seed)
        start = torch.randn(self.input_dim, bits, generator=gen) / math.sqrt(self.input_dim)
        self.register_buffer("projection", start)  # SimHash until the first fit
        self.seen: list[torch.Tensor] = []

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        return self.centre(emb.float()) @ self.projection

    def loss(
        self,
        emb: torch.Tensor,
        pairs: torch.Tensor,
        true: torch.Tensor,
        teacher: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.seen.append(emb.detach().float().cpu())
        while sum(len(x) for x in self.seen[1:]) >= self.sample:
            self.seen.pop(0)
        return super().loss(emb, pairs, true, teacher)

    def refit(self) -> None:
        if self.seen:
            self.fit(torch.cat(self.seen))
            self.seen.clear()

    @torch.no_grad()
    def fit(self, emb: torch.Tensor) -> None:
        """Projection = principal axes (or a seeded expansion) times the ITQ rotation."""
        centred = (emb.double() - self.centre.running_mean.double().cpu()) / torch.sqrt(
            self.centre.running_var.double().cpu() + self.centre.eps
        )
        gen = torch.Generator().manual_seed(self.seed)
        dim = centred.shape[1]
        if self.bits <= dim <= self.exact_axes:
            axes = torch.linalg.eigh(centred.T @ centred).eigenvectors.flip(1)[:, : self.bits]
        elif self.bits <= dim:  # wide embeddings (k-mer profiles): a seeded randomised PCA
            with torch.random.fork_rng():
                torch.manual_seed(self.seed)
                axes = torch.pca_lowrank(centred, q=self.bits, center=False, niter=4)[2]
        else:
            axes = torch.randn(dim, self.bits, generator=gen, dtype=torch.float64)
        data = centred @ axes
        rotation = torch.linalg.qr(
            torch.randn(self.bits, self.bits, generator=gen, dtype=torch.float64)
        ).Q
        for _ in range(self.iterations):  # signs for this rotation, then the best rotation
            signs = torch.sign(data @ rotation)
            u, _, vt = torch.linalg.svd(data.T @ signs)
            rotation = u @ vt
        self.projection.copy_((axes @ rotation).to(self.projection))


class SignHash(HashCoder):
    """SimHash: signs of a fixed seeded random projection of the centred embedding."""

    def __init__(
        self, embedding_dim: int, bits: int = 128, seed: int = 0, features: Features | None = None
    ) -> None:
        super().__init__(embedding_dim, bits, features)
        gen = torch.Generator().manual_seed(seed)
        planes = torch.randn(self.input_dim, bits, generator=gen) / math.sqrt(self.input_dim)
        self.register_buffer("planes", planes)

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        return self.centre(emb.float()) @ self.planes


def pack_codes(codes: torch.Tensor) -> np.ndarray:
    """(B, bits) bool -> (B, bits / 8) uint8, most significant bit first (FAISS binary layout)."""
    return np.packbits(codes.cpu().numpy().astype(np.uint8), axis=1)


def weighted_hamming(
    logits: np.ndarray, codes: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """(P,) query-weighted Hamming distances of (P, bits / 8) packed codes to the queries of
    (Q, bits) ``logits``: code p against query ``rows[p]`` (default: query p). A bit where the
    code differs from the query's sign counts |logit| / mean |logit| of the query's bits, not 1.
    The query is not reduced to its signs (an asymmetric distance), so bits it is unsure of
    count less; equal weights give the Hamming distance. Weights are worked out once per query,
    not once per code it meets."""
    weight = np.abs(logits).astype(np.float32)
    weight /= np.maximum(weight.mean(axis=1, keepdims=True), 1e-12)
    signs = logits > 0
    if rows is not None:
        weight, signs = weight[rows], signs[rows]
    differ = np.unpackbits(codes, axis=1).astype(bool) != signs
    return (weight * differ).sum(axis=1)


def hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) Hamming distances between packed uint8 codes (brute force, for tests and checks)."""
    x = np.bitwise_xor(a[:, None, :], b[None, :, :])
    return np.unpackbits(x, axis=2).sum(axis=2)
