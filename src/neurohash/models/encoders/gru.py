from __future__ import annotations

import torch
from torch import nn

from neurohash.models.encoders.base import N_SYMBOLS, Encoder, one_hot


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each (B, L, C) row's first ``lengths[b]`` steps and leave its padding in place:
    the reverse direction then reads each sequence from its own last base, never from padding.
    Applying it twice gives ``x`` back."""
    steps = torch.arange(x.shape[1], device=x.device)
    index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    return x.gather(1, index[..., None].expand_as(x))


class GRUEncoder(Encoder):
    """Bidirectional GRU whose padding is never read (unlike NeuroSEED, whose GRU returned the
    state at the last padded step); final states of both directions -> linear.

    Each direction is its own single-layer ``nn.GRU`` run over the whole padded batch: the reverse
    one over each sequence reversed within its length, so every valid step depends on valid steps
    only and both final states sit at step ``length - 1`` of their own pass. This is the same
    function as ``nn.GRU(bidirectional=True)`` over a ``PackedSequence`` (tested), without the
    packed path: a training step on CPU at 150 bp is ~3.5x faster (padded steps cost ~15% more
    at inference)."""

    def __init__(
        self, embedding_dim: int, max_len: int, hidden: int = 128, layers: int = 1
    ) -> None:
        super().__init__(embedding_dim, max_len)
        sizes = [N_SYMBOLS] + [2 * hidden] * (layers - 1)
        self.forward_layers = nn.ModuleList(nn.GRU(n, hidden, batch_first=True) for n in sizes)
        self.reverse_layers = nn.ModuleList(nn.GRU(n, hidden, batch_first=True) for n in sizes)
        self.readout = nn.Linear(2 * hidden, embedding_dim)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Checkpoints written before the directions were split hold one bidirectional nn.GRU
        (``gru.weight_ih_l1_reverse``, ...): their weights move to the matching direction."""
        for key in [k for k in state_dict if k.startswith(prefix + "gru.")]:
            name = key.removeprefix(prefix + "gru.")
            weight, layer = name.removesuffix("_reverse").rsplit("_l", 1)
            direction = "reverse_layers" if name.endswith("_reverse") else "forward_layers"
            state_dict[f"{prefix}{direction}.{layer}.{weight}_l0"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        lengths = self.mask(tokens).sum(1).clamp_min(1)
        x = one_hot(tokens)
        for forward_gru, reverse_gru in zip(self.forward_layers, self.reverse_layers, strict=True):
            ahead, _ = forward_gru(x)
            behind, _ = reverse_gru(reverse_within_length(x, lengths))
            x = torch.cat([ahead, reverse_within_length(behind, lengths)], dim=-1)
        # step 0 of the reverse pass, mapped back, is the reverse direction's final state
        hidden = x.shape[-1] // 2
        last = (lengths - 1)[:, None, None].expand(-1, 1, x.shape[-1])
        forward_final = x.gather(1, last)[:, 0, :hidden]
        reverse_final = x[:, 0, hidden:]
        return self.readout(torch.cat([forward_final, reverse_final], dim=-1))
