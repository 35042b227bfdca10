"""Embedding throughput of the default transformer: sequences per second at ~150 bp and ~1.5 kb.

    python bench/embed.py [--quick] [--device cpu|cuda] [--compile] [--peak-tflops T]
        [--workers N] [--seconds S] [--out docs/benchmarks/embed.json]

The model is the default ``model=transformer`` (conf/model/transformer.yaml, ~1.5M parameters,
hyperbolic geometry, learned 128-bit hash) built at ``max_len`` 152 (V4 reads) and 1600
(Greengenes 16S) with seeded random weights: throughput does not depend on the weights. Inputs
are real sequences (V4 reads from ../shared/data, Greengenes 13_8), cycled to fill batches.

1. **Model**: tokens already on the device, ``module(tokens)`` timed per variant: fp32 at the
   predict loop's batch of 256 (the baseline every ratio is relative to), fp32 and bf16 autocast
   at a large batch and, with ``--compile`` (the default on CUDA), ``torch.compile``.
2. **Data path**: strings -> ``neurohash.data.tokens.encode`` in DataLoader workers (uint8
   tokens, pinned memory on CUDA) -> ``neurohash.index.job.hash_tokens`` (embedding, hash head,
   packed codes back on the host), the predict loop's own step, for the fastest variant.
3. **FLOPs**: ``torch.utils.flop_counter`` on one forward pass (matmuls and attention) gives the
   FLOPs per sequence; achieved TFLOP/s over ``--peak-tflops`` is the fraction of the device's
   peak (default on CUDA: 989.4, the H100 SXM's dense bf16 tensor-core peak; none on CPU).
4. **Attention kernels**: the profiler lists the attention ops each forward actually runs, so the
   report says whether attention goes through ``scaled_dot_product_attention`` (fused kernels).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from report import (
    GREENGENES_LENGTHS,
    RESULTS,
    ROOT,
    V4_READS,
    begin,
    missing_on_gpu,
    publish,
    save_figure,
    subplots,
    table,
)
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from neurohash.data.cleaning import Cleaning
from neurohash.data.sources import load_records
from neurohash.data.tokens import encode
from neurohash.index.job import hash_tokens
from neurohash.module import DistanceEmbeddingModule

SETS = {  # key -> (name, source, cleaning, max_len)
    "v4": (
        "V4 reads (~150 bp)",
        str(V4_READS),
        Cleaning(min_len=100),
        152,
    ),
    "greengenes": (
        "Greengenes 16S (~1.5 kb)",
        "greengenes",
        Cleaning(min_len=GREENGENES_LENGTHS[0], max_len=GREENGENES_LENGTHS[1]),
        GREENGENES_LENGTHS[1],
    ),
}
H100_BF16_DENSE_TFLOPS = 989.4
GOAL = ("Greengenes 16S (~1.5 kb)", 100_000)  # the target on one H100


@dataclass(frozen=True)
class Variant:
    precision: str  # fp32 | bf16 (autocast)
    compiled: bool
    batch: int

    @property
    def name(self) -> str:
        return f"{self.precision}{' + compile' if self.compiled else ''}, batch {self.batch}"


def variants(args: argparse.Namespace) -> list[Variant]:
    """The baseline (fp32, predict's batch) first, then large batches, bf16 autocast, compile."""
    found = [Variant("fp32", False, args.batch), Variant("fp32", False, args.big_batch[0])]
    found.append(Variant("bf16", False, args.bf16_batch))
    if args.compile:
        found += [Variant("bf16", True, b) for b in args.big_batch]
    return found


# model and data ---------------------------------------------------------------------------------


def default_module(max_len: int, seed: int = 0) -> DistanceEmbeddingModule:
    """The default training config's module (``python train.py data.max_len=MAX_LEN``)."""
    from neurohash.hydra_app import compose_app
    from neurohash.train import build_training_module

    torch.manual_seed(seed)
    cfg = compose_app("train", ROOT / "outputs" / "bench_embed", f"data.max_len={max_len}")
    return build_training_module(cfg).eval()


def real_sequences(source: str, cleaning: Cleaning, n: int, seed: int) -> list[str]:
    records, _ = load_records(source, cleaning, n, seed)
    return [rec.seq for rec in records]


def cycled(seqs: list[str], n: int) -> list[str]:
    return list(itertools.islice(itertools.cycle(seqs), n))


def autocast(device: str, precision: str) -> torch.autocast:
    return torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16")


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# 1. the model alone -----------------------------------------------------------------------------


def model_throughput(
    module: DistanceEmbeddingModule,
    seqs: list[str],
    max_len: int,
    variant: Variant,
    device: str,
    seconds: float,
) -> dict[str, Any]:
    """Sequences per second of ``module(tokens)`` on tokens already on the device."""
    tokens = encode(cycled(seqs, variant.batch), max_len).to(device)
    forward = torch.compile(module) if variant.compiled else module
    with torch.inference_mode(), autocast(device, variant.precision):
        start = time.perf_counter()
        forward(tokens)  # warm-up; compiles when compiled
        synchronize(device)
        warmup_s = time.perf_counter() - start
        calls, start = 0, time.perf_counter()
        while calls < 2 or time.perf_counter() - start < seconds:
            forward(tokens)
            calls += 1
        synchronize(device)
        elapsed = time.perf_counter() - start
    return {
        **asdict(variant),
        "variant": variant.name,
        "warmup_s": warmup_s,
        "seq_per_s": calls * variant.batch / elapsed,
    }


# 2. the data path -------------------------------------------------------------------------------


class TokenBatches(Dataset):
    """Batches of uint8 tokens encoded in the DataLoader's workers (8x less to copy than int64)."""

    def __init__(self, seqs: list[str], max_len: int, batch: int) -> None:
        self.seqs, self.max_len, self.batch = seqs, max_len, batch

    def __len__(self) -> int:
        return -(-len(self.seqs) // self.batch)

    def __getitem__(self, i: int) -> torch.Tensor:
        chunk = self.seqs[i * self.batch : (i + 1) * self.batch]
        return encode(chunk, self.max_len, torch.uint8)


def batches(loader: DataLoader, device: str) -> Iterator[torch.Tensor]:
    for tokens in loader:
        yield tokens.to(device, non_blocking=True)  # the module widens them on the device


def pipeline_throughput(
    module: DistanceEmbeddingModule,
    seqs: list[str],
    max_len: int,
    variant: Variant,
    device: str,
    workers: int,
    n_batches: int,
) -> dict[str, Any]:
    """Strings in, packed codes out (``hash_tokens``, the predict step): sequences per second
    in steady state. The first batch is the warm-up (workers started, model compiled), so a
    short run does not mostly time the workers' start-up."""
    if variant.compiled:
        module.encoder = torch.compile(module.encoder)
    data = TokenBatches(cycled(seqs, variant.batch * (n_batches + 1)), max_len, variant.batch)
    loader = DataLoader(data, batch_size=None, num_workers=workers, pin_memory=device == "cuda")
    with torch.inference_mode(), autocast(device, variant.precision):
        stream = batches(loader, device)
        hash_tokens(module, next(stream), store_embeddings=False)  # warm-up
        start, rows = time.perf_counter(), 0
        for tokens in stream:
            rows += len(hash_tokens(module, tokens, store_embeddings=False)["code"])
        elapsed = time.perf_counter() - start
    module.encoder = getattr(module.encoder, "_orig_mod", module.encoder)
    return {
        "variant": variant.name,
        "workers": workers,
        "sequences": rows,
        "seq_per_s": rows / elapsed,
    }


# 3. FLOPs and 4. attention kernels --------------------------------------------------------------


def flops_per_sequence(module: DistanceEmbeddingModule, seqs: list[str], max_len: int) -> float:
    """Matmul and attention FLOPs of one forward pass per sequence.

    Counted with the module in training mode (dropout is 0, so the arithmetic is the same): in
    eval mode PyTorch runs its fused encoder-layer kernel, which the FLOP counter cannot see.
    """
    tokens = encode(cycled(seqs, 8), max_len).to(module.device)
    module.train()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(tokens)
    module.eval()
    return counter.get_total_flops() / len(tokens)


def attention_ops(
    module: DistanceEmbeddingModule, seqs: list[str], max_len: int, device: str, precision: str
) -> list[str]:
    """The attention-related aten ops one eval-mode forward pass runs (profiler)."""
    tokens = encode(cycled(seqs, 4), max_len).to(device)
    with torch.profiler.profile() as prof, torch.inference_mode(), autocast(device, precision):
        module(tokens)
    keys = {event.key for event in prof.key_averages()}
    words = ("attention", "multi_head", "transformer_encoder", "softmax")
    return sorted(k for k in keys if k.startswith("aten::") and any(w in k for w in words))


def uses_sdpa(ops: list[str]) -> bool:
    return any("scaled_dot_product" in op for op in ops)


# the benchmark ----------------------------------------------------------------------------------


def measure_set(
    args: argparse.Namespace, source: str, cleaning: Cleaning, max_len: int
) -> dict[str, Any]:
    """All measurements at one sequence length."""
    seqs = real_sequences(source, cleaning, args.sequences, args.seed)
    module = default_module(max_len, args.seed).to(args.device)
    flops = flops_per_sequence(module, seqs, max_len)
    found = []
    for variant in variants(args):
        entry = model_throughput(module, seqs, max_len, variant, args.device, args.seconds)
        entry["tflops"] = entry["seq_per_s"] * flops / 1e12
        entry["peak_fraction"] = entry["tflops"] / args.peak_tflops if args.peak_tflops else None
        entry["vs_baseline"] = entry["seq_per_s"] / (found[0] if found else entry)["seq_per_s"]
        found.append(entry)
        print(f"  {variant.name:<28} {entry['seq_per_s']:>12,.0f} seq/s", flush=True)
    best = max(found, key=lambda e: e["seq_per_s"])
    best_variant = Variant(best["precision"], best["compiled"], best["batch"])
    pipeline = pipeline_throughput(
        module, seqs, max_len, best_variant, args.device, args.workers, args.pipeline_batches
    )
    print(f"  data path ({best_variant.name}): {pipeline['seq_per_s']:,.0f} seq/s", flush=True)
    return {
        "max_len": max_len,
        "sequences": len(seqs),
        "mean_length": float(np.mean([len(s) for s in seqs])),
        "parameters": sum(p.numel() for p in module.encoder.parameters()),
        "flops_per_seq": flops,
        "attention_ops": {
            p: attention_ops(module, seqs, max_len, args.device, p) for p in ("fp32", "bf16")
        },
        "variants": found,
        "pipeline": pipeline,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "device": args.device,
        "peak_tflops": args.peak_tflops,
        "seconds_per_variant": args.seconds,
        "sets": {},
    }
    for key in args.sets:
        name, source, cleaning, max_len = SETS[key]
        print(f"{name}: max_len {max_len}", flush=True)
        report["sets"][name] = measure_set(args, source, cleaning, max_len)
    return report


def plot(report: dict[str, Any], path: Path) -> Path:
    """Sequences per second of every variant at both lengths (log scale)."""
    fig, ax = subplots(figsize=(10, 3.8))
    names = list(report["sets"])
    labels = [v["variant"] for v in report["sets"][names[0]]["variants"]] + ["data path (best)"]
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        entry = report["sets"][name]
        values = [v["seq_per_s"] for v in entry["variants"]] + [entry["pipeline"]["seq_per_s"]]
        ax.bar(np.arange(len(values)) + i * width, values, width, label=name)
    ax.set_xticks(np.arange(len(labels)) + width * (len(names) - 1) / 2, labels, rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("sequences / s")
    ax.set_title(f"embedding throughput, default transformer, {report['device']}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_figure(fig, path)


def markdown(report: dict[str, Any]) -> str:
    """The report's section: one table per sequence length, attention kernels, the goal."""
    device = report["device"]
    peak = report.get("peak_tflops")
    lines = [f"## Embedding throughput ({device})", ""]
    lines.append(
        "Default transformer (random weights: throughput does not depend on them), real "
        "sequences; model = tokens already on the device; data path = strings encoded in "
        "DataLoader workers through to packed codes, timed after its first batch; ratios against "
        "fp32 at the predict loop's batch (the first row), in the same run"
        + (f"; fraction of a {peak:g} TFLOP/s peak" if peak else "")
        + "."
    )
    for name, entry in report["sets"].items():
        lines += [
            "",
            f"**{name}** (max_len {entry['max_len']}, mean length "
            f"{entry['mean_length']:.0f}, {entry['parameters']:,} parameters, "
            f"{entry['flops_per_seq'] / 1e6:.1f} MFLOP per sequence)",
            "",
        ]
        rows = [
            [
                v["variant"],
                f"{v['seq_per_s']:,.0f}",
                f"{v['vs_baseline']:.2f}x",
                f"{v['tflops']:.3f}",
                "–" if v["peak_fraction"] is None else f"{100 * v['peak_fraction']:.2f}%",
            ]
            for v in entry["variants"]
        ]
        pipe = entry["pipeline"]
        rows.append(
            [
                f"data path: strings -> codes ({pipe['variant']}, {pipe['workers']} workers)",
                f"{pipe['seq_per_s']:,.0f}",
                "",
                "",
                "",
            ]
        )
        base = f"vs fp32 b{entry['variants'][0]['batch']}"
        lines.append(table(["variant", "seq/s", base, "TFLOP/s", "of peak"], rows))
        ops = entry["attention_ops"]
        lines += [
            "",
            "Attention ops in an eval forward: fp32 "
            f"`{', '.join(ops['fp32'])}`; bf16 autocast `{', '.join(ops['bf16'])}`; "
            f"scaled_dot_product_attention used: fp32 {uses_sdpa(ops['fp32'])}, "
            f"bf16 {uses_sdpa(ops['bf16'])}.",
        ]
    lines += ["", goal_line(report)]
    lines += [f"\n![embedding throughput](benchmarks/{p})" for p in report.get("plots", [])]
    return "\n".join(lines)


def goal_line(report: dict[str, Any]) -> str:
    name, target = GOAL
    entry = report["sets"].get(name)
    if report["device"] != "cuda" or entry is None:
        return (
            f"Goal (one H100, {target:,} seq/s at 1.5 kb): not measured here, no GPU in "
            "this run (`python bench/embed.py --device cuda` measures it)."
        )
    best = max(v["seq_per_s"] for v in entry["variants"])
    verdict = "met" if best >= target else "not met"
    return f"Goal ({target:,} seq/s at 1.5 kb on one H100): {verdict}, best {best:,.0f} seq/s."


def pending(reports: list[dict[str, Any]]) -> list[str]:
    """What the issue asks of this benchmark that no report holds yet (for bench/report.py)."""
    return missing_on_gpu(
        reports,
        "embedding throughput on a GPU (bf16, torch.compile, fraction of peak; goal 100,000 "
        "seq/s at 1.5 kb on one H100): `python bench/embed.py --device cuda --out "
        "docs/benchmarks/embed_cuda.json`",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few sequences, short timings")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also torch.compile (default: on CUDA only)",
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help=f"device peak (default on CUDA: {H100_BF16_DENSE_TFLOPS}, H100 SXM dense bf16)",
    )
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument("--batch", type=int, default=256, help="baseline batch (predict's)")
    parser.add_argument("--big-batch", type=int, nargs="+", default=None, help="large batches")
    parser.add_argument("--bf16-batch", type=int, default=None, help="batch of eager bf16")
    parser.add_argument("--sequences", type=int, default=None, help="real sequences per length")
    parser.add_argument("--seconds", type=float, default=None, help="timed seconds per variant")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    parser.add_argument("--pipeline-batches", type=int, default=None, help="data-path batches")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "embed.json"), help="JSON report")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    cpu_big = 512 if args.quick else 1024
    defaults = {
        "big_batch": [4096, 16384] if cuda else [cpu_big],
        # bf16 has no fast kernels on this CPU: a small batch keeps it short
        "bf16_batch": 4096 if cuda else 64 if args.quick else 256,
        "compile": cuda,
        "peak_tflops": H100_BF16_DENSE_TFLOPS if cuda else None,
        "sequences": 512 if args.quick else 4096,
        "seconds": 2.0 if args.quick else 10.0,
        "workers": 0 if not cuda else 8,
        "pipeline_batches": 4 if args.quick else 60 if cuda else 20,  # timed, after a warm-up
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    started, argv = begin(argv)
    args = parse_args(argv)
    return publish(__file__, argv, started, args.quick, run(args), args.out, markdown, plot)


if __name__ == "__main__":
    main()
