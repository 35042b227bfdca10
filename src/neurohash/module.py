"""The LightningModule: encoder + geometry + loss, trained on triplets, judged on full matrices."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from neurohash.data.edit_distance import paired_distances
from neurohash.data.tokens import encode
from neurohash.hashing import HashCoder, SignHash, pack_codes
from neurohash.metrics import distance_metrics, hamming_metrics
from neurohash.models.encoders.base import Encoder
from neurohash.models.geometry import Geometry

FAST_DEV_BANK = 256  # a coder's bank under fast_dev_run: enough lists for one step's draw


class DistanceEmbeddingModule(L.LightningModule):
    """Learns embeddings whose ``geometry`` distance approximates ED / ``normaliser``.

    ``config`` (the resolved model/distance/loss/data settings) is stored in checkpoints so that
    ``neurohash.checkpoint.load_module`` can rebuild the exact model anywhere.
    """

    def __init__(
        self,
        encoder: Encoder,
        geometry: Geometry,
        loss: nn.Module,
        normaliser: int,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        config: dict[str, Any] | None = None,
        hashing: HashCoder | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters("normaliser", "config")
        self.encoder, self.geometry, self.loss = encoder, geometry, loss
        self.hashing = hashing if hashing is not None else SignHash(encoder.embedding_dim)
        self.normaliser = normaliser
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self._eval: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.test_pairs: tuple[np.ndarray, np.ndarray] | None = None
        self.best_val_rmse = math.inf

    @property
    def trainable_encoder(self) -> bool:
        return any(p.requires_grad for p in self.encoder.parameters())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Embeddings of (B, L) tokens of any integer dtype (uint8 travels light; see encode)."""
        return self.encoder(tokens.long())

    def pair_distances(self, tokens: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Predicted distances of the (P, 2) index pairs of a batch; each sequence embedded once."""
        emb = self(tokens)
        return self.geometry(emb[pairs[:, 0]], emb[pairs[:, 1]])

    def code_input(self, tokens: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        """What the coder reads of (B, L) tokens: its own features of the tokens if it has them,
        else their embeddings (``emb`` if ``forward`` gave them already) mapped into the
        geometry."""
        features = self.hashing.features
        if features is not None:
            return features.distance.project(features(tokens))
        return self.geometry.project((self(tokens) if emb is None else emb).float())

    def code_distance(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(N, M) distances in ED / L between rows of ``code_input``: the coder's teacher."""
        features = self.hashing.features
        geometry = features.distance if features is not None else self.geometry
        return geometry.pairwise_projected(u, v)

    @torch.no_grad()
    def code_logits(self, tokens: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        """(B, bits) scores whose signs are the codes of (B, L) tokens with embeddings ``emb``
        (computed only if the coder reads them and they are not given: ``code_input``)."""
        return self.hashing.logits(self.code_input(tokens, emb))

    @torch.no_grad()
    def codes_of(self, tokens: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        """Binary hash codes (B, bits) of (B, L) tokens with embeddings ``emb`` (as
        ``code_logits``)."""
        return self.code_logits(tokens, emb) > 0

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        tokens, pairs, strand = batch["tokens"], batch["pairs"], batch.get("strand_tokens")
        emb = self(tokens if strand is None else torch.cat([tokens, strand]))
        emb, reverse = emb[: len(tokens)], emb[len(tokens) :]
        pred = self.geometry(emb[pairs[:, 0]], emb[pairs[:, 1]])
        true = batch["edit_distance"] / self.normaliser
        loss = self.loss(pred, true, n_triplets=len(tokens) // 3)
        code_input = self.code_input(tokens, emb)
        hash_loss = self.hashing.loss(code_input, pairs, true, self.teacher(code_input))
        self.log("train/hash_loss", hash_loss)
        loss = loss + hash_loss
        if strand is not None:  # reverse complements of the first sequences (the anchors)
            loss = loss + self.strand_loss(emb[: len(strand)], reverse, batch["strand_weight"])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {self.global_step}")
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/rmse_pct", 100 * torch.sqrt(torch.mean((pred.detach() - true) ** 2)))
        return loss

    def strand_loss(
        self, emb: torch.Tensor, reverse: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """``weight`` x the MSE of the distances (in ED / L, as the targets) between embeddings of
        sequences and of their reverse complements against a target of 0: a genome window means
        the same on either strand. Logs the term and the mean distance."""
        distance = self.geometry(emb, reverse)
        loss = weight * torch.mean(distance**2)
        self.log("train/strand_distance", distance.detach().mean())
        self.log("train/strand_loss", loss)
        return loss

    def teacher(self, code_input: torch.Tensor) -> torch.Tensor | None:
        """The (B, B) distances over the batch (``code_distance``), for coders that distil them."""
        if not self.hashing.needs_teacher:
            return None
        with torch.no_grad():
            return self.code_distance(code_input, code_input).float()

    def on_train_epoch_start(self) -> None:
        """An encoder that trains moves its embeddings: the bank of a coder that learns from the
        model's neighbour lists (``NeighbourHash``) on them is embedded again at every epoch
        (features of its own do not move)."""
        moves = self.trainable_encoder and self.hashing.features is None
        if self.hashing.needs_bank and moves:
            self.fill_bank()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """The bank is filled before the first step it is missing at: the first of a run, or the
        first of a run resumed mid-epoch (a SLURM requeue), which skips
        ``on_train_epoch_start``; without it the coder would train without its lists (and DDP
        would stop at the unused parameters). An encoder with nothing to train fills it once."""
        if self.hashing.needs_bank and self.hashing.bank is None:
            self.fill_bank()

    def fill_bank(self) -> None:
        """The coder's bank: a seeded sample of the datamodule's ``bank_sequences`` as the coder
        reads them (``code_input``), by the model as it is now. Under ``exact_lists`` each one's
        neighbour list is aligned to it (exact edit distances). A fast dev run (``debug=fdr``)
        checks the code path on a bank of ``FAST_DEV_BANK``: the default's 30,000 Greengenes
        sequences took minutes before its one batch."""
        coder = self.hashing
        size = min(coder.bank_size, FAST_DEV_BANK) if self.trainer.fast_dev_run else coder.bank_size
        seqs = self.trainer.datamodule.bank_sequences(size)
        rng = np.random.default_rng(self.trainer.datamodule.seed)
        pick = np.sort(rng.permutation(len(seqs))[:size])
        chosen = [seqs[i] for i in pick]
        code_input = code_inputs(self, chosen, self.normaliser).to(self.device)
        coder.fill_bank(code_input, self.code_distance)
        if coder.exact_lists:
            lists = coder.lists.numpy()
            anchors = [chosen[i] for i in np.repeat(np.arange(len(chosen)), lists.shape[1])]
            neighbour_seqs = [chosen[j] for j in lists.ravel()]
            coder.order_lists(paired_distances(anchors, neighbour_seqs).reshape(lists.shape))

    # evaluation: embed each sequence once, then compare full matrices
    def _collect(self, stage: str, batch: dict[str, torch.Tensor]) -> None:
        tokens = batch["tokens"]
        emb = self(tokens)
        logits = self.code_logits(tokens.long(), emb)
        self._eval.setdefault(stage, []).append((emb.float().cpu(), logits.float().cpu()))

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._collect("val", batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._collect("test", batch)

    def _evaluate(self, stage: str) -> dict[str, float]:
        collected = self._eval.pop(stage, [])
        emb = torch.cat([e for e, _ in collected])
        logits = torch.cat([c for _, c in collected])
        exact = self.trainer.datamodule.exact_distances(stage)
        if len(emb) != len(exact):  # sanity-check runs see only part of the set
            exact = exact[: len(emb), : len(emb)]
        metrics, pred = self.matrix_metrics(emb, logits, exact)
        if stage == "test":
            i, j = np.triu_indices(len(exact), k=1)
            self.test_pairs = (pred[i, j] * self.normaliser, exact[i, j])
        return metrics

    @torch.no_grad()
    def matrix_metrics(
        self, emb: torch.Tensor, code_logits: torch.Tensor, exact: np.ndarray
    ) -> tuple[dict[str, float], np.ndarray]:
        """Distance metrics of (N, D) embeddings and Hamming metrics of the codes of their
        (N, bits) ``code_logits`` against an (N, N) matrix of exact edit distances; and the
        predicted (N, N) distances in ED / L."""
        emb = emb.to(self.device)
        pred = self.geometry.pairwise(emb, emb).cpu().double().numpy()
        if not np.isfinite(pred).all():
            raise FloatingPointError("non-finite predicted distances in evaluation")
        metrics = distance_metrics(pred, exact, self.normaliser)
        codes = pack_codes(code_logits > 0)
        metrics.update({f"hash_{k}": v for k, v in hamming_metrics(codes, exact).items()})
        return metrics, pred

    def on_validation_epoch_start(self) -> None:
        """Coders fitted without gradients (ITQ) refit on what training showed them; every DDP
        rank then takes rank 0's fit, so all emit the same codes."""
        if self.trainer.sanity_checking:
            return
        self.hashing.refit()
        for buffer in self.hashing.buffers():
            buffer.copy_(self.trainer.strategy.broadcast(buffer, src=0))

    def on_validation_epoch_end(self) -> None:
        metrics = self._evaluate("val")
        if not self.trainer.sanity_checking:
            self.best_val_rmse = min(self.best_val_rmse, metrics["rmse_pct"])
            metrics["rmse_pct_best"] = self.best_val_rmse
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, sync_dist=False)
        self._log_geometry()

    def on_test_epoch_end(self) -> None:
        self.log_dict({f"test/{k}": v for k, v in self._evaluate("test").items()})

    def _log_geometry(self) -> None:
        self.log("geometry/scale", self.geometry.scale.detach())
        radius = getattr(self.geometry, "radius", None)
        if radius is not None:
            self.log("geometry/radius", radius.detach())

    def fit_scale(self, batches: Iterable[dict[str, torch.Tensor]]) -> float:
        """Closed-form least-squares output scale of the geometry (see ``fit_scales``)."""
        return self.fit_scales(batches, [(self.geometry, self)])[0]

    @torch.no_grad()
    def fit_scales(
        self,
        batches: Iterable[dict[str, torch.Tensor]],
        targets: list[tuple[Geometry, Callable[[torch.Tensor], torch.Tensor]]],
    ) -> list[float]:
        """Closed-form least-squares output scale of each (geometry, embedding of tokens) pair:
        argmin_a sum (a * d - ED / L)^2 over the batches' pairs. Sets and returns them.

        The forward passes run in the module's current mode (train mode at fit start, the mode
        the first steps see) but leave no trace: the encoder's buffers (BatchNorm running
        statistics) are restored afterwards, so only the scales change."""
        saved = {name: buffer.clone() for name, buffer in self.encoder.named_buffers()}
        sums = torch.zeros(len(targets), 2, dtype=torch.float64, device=self.device)
        for geometry, _ in targets:
            geometry.log_scale.zero_()
        for batch in batches:
            tokens, pairs = batch["tokens"].to(self.device), batch["pairs"].to(self.device)
            true = batch["edit_distance"].to(self.device).double() / self.normaliser
            for row, (geometry, embed) in enumerate(targets):
                out = embed(tokens)
                pred = geometry(out[pairs[:, 0]], out[pairs[:, 1]]).double()
                sums[row] += torch.stack([(pred * true).sum(), (pred * pred).sum()])
        for name, buffer in self.encoder.named_buffers():
            buffer.copy_(saved[name])
        if self._trainer is not None:  # DDP: every rank must end with the same scales
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        scales = [num / den if den > 0 else 1.0 for num, den in sums.tolist()]
        for (geometry, _), scale in zip(targets, scales, strict=True):
            geometry.log_scale.fill_(math.log(max(scale, 1e-12)))
        return scales

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the weights' digest, checked by ``checkpoint.load_module``."""
        from neurohash.checkpoint import WEIGHTS_DIGEST, weights_sha256

        checkpoint[WEIGHTS_DIGEST] = weights_sha256(checkpoint["state_dict"])

    def on_fit_start(self) -> None:
        """Fit the output scale in closed form before the first step: exactly for the k-mer
        baseline (its only parameter), and as the starting value of a fresh run of a trainable
        encoder. At initialisation raw distances can be orders of magnitude off ED / L (Manhattan
        over 128 outputs of a linear map of 6,400 one-hot inputs gives ~20 for targets ~0.15), and
        a learned log-scale at lr 1e-3 would need thousands of steps to close that gap. A fresh
        run fits the scale of the coder's own features' distance too (the teacher's units)."""
        fresh = self.trainer.ckpt_path is None  # a resumed run keeps its trained scale
        targets = []
        if not self.trainable_encoder or (fresh and self.geometry.log_scale.requires_grad):
            targets.append((self.geometry, self))
        features = self.hashing.features
        if fresh and features is not None:  # the coder's teacher: its features' distance
            targets.append((features.distance, features))
        if targets:
            batches = 32 if not self.trainable_encoder else 8
            loader = self.trainer.datamodule.train_dataloader()
            self.fit_scales((b for _, b in zip(range(batches), loader, strict=False)), targets)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params=params)
        if self.scheduler_factory is None:
            return optimizer
        total_steps = schedule_length(
            self.scheduler_factory, self.trainer.estimated_stepping_batches
        )
        scheduler = self.scheduler_factory(optimizer, total_steps=total_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def schedule_length(factory: Callable[..., Any], steps: int) -> int:
    """The ``total_steps`` to give a schedule for a run of ``steps`` optimizer steps.

    OneCycleLR divides by the length of its warm-up minus one step, so a warm-up of exactly one
    step (``pct_start * total_steps == 1``: 10 steps at the default 0.1) fails on its first step;
    such a schedule is made one step longer, a step the run never takes.
    """
    keywords = getattr(factory, "keywords", {})
    one_cycle = getattr(factory, "func", factory) is torch.optim.lr_scheduler.OneCycleLR
    if one_cycle and float(keywords.get("pct_start", 0.3) * steps) - 1 == 0:
        return steps + 1
    return steps


@contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode for the block, then back in the mode it was in."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def token_batches(
    module: DistanceEmbeddingModule, seqs: Sequence[str], max_len: int, batch_size: int = 256
) -> Iterator[torch.Tensor]:
    """(B, max_len) tokens of cleaned sequences, ``batch_size`` at a time, on the module's
    device."""
    for i in range(0, len(seqs), batch_size):
        yield encode(seqs[i : i + batch_size], max_len).to(module.device)


@torch.no_grad()
def embed_sequences(
    module: DistanceEmbeddingModule, seqs: list[str], max_len: int, batch_size: int = 256
) -> torch.Tensor:
    """Embeddings (N, D) of cleaned sequences, in batches, in eval mode."""
    with evaluating(module):
        out = [module(t).float().cpu() for t in token_batches(module, seqs, max_len, batch_size)]
    return torch.cat(out) if out else torch.zeros(0, module.encoder.embedding_dim)


@torch.no_grad()
def code_inputs(
    module: DistanceEmbeddingModule, seqs: Sequence[str], max_len: int, batch_size: int = 256
) -> torch.Tensor:
    """(N, F) float32 inputs of the coder (``code_input``) of cleaned sequences, in batches, in
    eval mode: its own features, or the model's embeddings mapped into the geometry."""
    with evaluating(module):
        batches = token_batches(module, seqs, max_len, batch_size)
        out = [module.code_input(tokens).float().cpu() for tokens in batches]
    return torch.cat(out) if out else torch.zeros(0, module.hashing.input_dim)


def skips_encoder(module: DistanceEmbeddingModule, embed: bool) -> bool:
    """Whether ``coded_batches`` leaves the encoder out: no embedding wanted, and a coder with
    features of its own."""
    return not embed and module.hashing.features is not None


@torch.no_grad()
def coded_batches(
    module: DistanceEmbeddingModule,
    seqs: Sequence[str],
    max_len: int,
    batch_size: int = 256,
    embed: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(embeddings, coder inputs, code logits) of each batch of cleaned sequences, float32 on
    the CPU, in eval mode: one pass over the tokens gives all three. With ``embed=False`` a coder
    with features of its own (``code_input``) gives codes without the encoder's forward pass,
    and the embeddings are (B, 0)."""
    skip = skips_encoder(module, embed)
    with evaluating(module):
        for tokens in token_batches(module, seqs, max_len, batch_size):
            emb = torch.zeros(len(tokens), 0) if skip else module(tokens)
            code_input = module.code_input(tokens, None if skip else emb)
            logits = module.hashing.logits(code_input)
            yield emb.float().cpu(), code_input.float().cpu(), logits.float().cpu()


def embed_and_code_sequences(
    module: DistanceEmbeddingModule, seqs: list[str], max_len: int, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings (N, D) and code logits (N, bits) of cleaned sequences, whose signs are their
    codes, in batches, in eval mode: one pass gives both."""
    emb = [torch.zeros(0, module.encoder.embedding_dim)]
    logits = [torch.zeros(0, module.hashing.bits)]
    for batch, _, batch_logits in coded_batches(module, seqs, max_len, batch_size):
        emb.append(batch)
        logits.append(batch_logits)
    return torch.cat(emb), torch.cat(logits)
