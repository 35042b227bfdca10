"""The benchmark report: ``docs/benchmarks.md`` from the JSON that the bench scripts wrote.

    python bench/report.py [--results docs/benchmarks] [--out docs/benchmarks.md]

Every ``RESULTS/NAME.json`` is paired with ``bench/NAME.py`` (or, for ``NAME_SUFFIX.json``, the
longest ``bench/NAME.py`` it extends) and rendered by that module's ``markdown(report) -> str``;
a JSON without a module (or a module without ``markdown``) is an error, so no result is silently
left out. Each section is headed by the provenance the script
recorded (``provenance`` below): command, mode, hardware, date and run time.

The helpers here are shared by the bench scripts so that every JSON carries the same provenance.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = ROOT / "docs" / "benchmarks"
SHARED_DATA = ROOT.parent / "shared" / "data"  # beside the checkout, never copied into it
V4_READS = SHARED_DATA / "study550_v4_amplicons.fasta.gz"
INFLUENZA = SHARED_DATA / "influenza_a_segments.fasta.gz"
INFLUENZA_LENGTHS = (800, 2400)  # whole segments only; the influenza cells train at L = 2,400
GREENGENES_LENGTHS = (1200, 1600)  # full-length 16S, as conf/data/greengenes.yaml cleans it
# sections in reading order; any other JSON follows alphabetically
ORDER = (
    "accuracy",
    "distance",
    "embed",
    "train_speed",
    "search",
    "search_scale",
    "build",
    "store",
    "codes",
)
NOISE = (
    "Speed figures were measured on a 2-core virtual machine with no other benchmark running; "
    "the accuracy cells ran as two single-threaded workers side by side, so their wall times are "
    "per worker, under load. Ratios measured in the same run are the figures to read."
)


# shared by the bench scripts --------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU, cores, threads and library versions; the GPU's name when one is visible."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (platform.processor() is empty on most Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def source_version() -> str | None:
    """The checkout's commit, ``-dirty`` where the code differs from it (the reports a bench
    rewrites do not count), so that a figure can be traced to the code that produced it; None
    outside a git checkout. Cached: a process runs the code it loaded, so the first call, made
    before any work, names it even if the checkout changes while the process runs."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)

    code = ("src", "conf", "bench", "train.py", "predict.py", "pyproject.toml")
    try:
        head = git("rev-parse", "--short", "HEAD")
        changed = git("diff", "--quiet", "HEAD", "--", *code)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode:
        return None
    return head.stdout.strip() + ("-dirty" if changed.returncode else "")


def begin(argv: Sequence[str] | None) -> tuple[float, list[str]]:
    """The common start of every bench script: the clock, the arguments, and the code version
    pinned before any work, so the report names the code this process loaded."""
    source_version()
    return time.perf_counter(), list(sys.argv[1:] if argv is None else argv)


def provenance(script: str, argv: Sequence[str], started: float, mode: str) -> dict[str, Any]:
    """What the report prints above a table: the command, mode, machine, code, date, run time."""
    return {
        "command": shlex.join(["python", f"bench/{Path(script).name}", *argv]),
        "mode": mode,
        "hardware": machine(),
        "commit": source_version(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "wall_s": time.perf_counter() - started,
    }


def write_json(report: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report written to {path}")
    return path


def publish(
    script: str,
    argv: Sequence[str],
    started: float,
    quick: bool,
    report: dict[str, Any],
    out: str | os.PathLike,
    markdown: Callable[[dict[str, Any]], str],
    plot: Callable[[dict[str, Any], Path], Path] | None = None,
) -> dict[str, Any]:
    """The common ending of every bench script: its plot beside the JSON, provenance first, the
    JSON written, its Markdown section printed."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if plot is not None:
        report["plots"] = [plot(report, out.with_suffix(".png")).name]
    report = provenance(script, argv, started, "quick" if quick else "full") | report
    write_json(report, out)
    print(markdown(report))
    return report


def subplots(*args: Any, **kwargs: Any) -> Any:
    """``plt.subplots`` on the non-interactive Agg backend (benchmarks run headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig: Any, path: Path, dpi: int = 120) -> Path:
    """Lay out, write atomically (a temporary name, then renamed) and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")  # savefig takes the format from the suffix
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def missing_on_gpu(reports: Iterable[dict[str, Any]], item: str) -> list[str]:
    """``[item]`` for ``bench/report.py``'s "not measured yet" list until a report ran on CUDA."""
    return [] if any(r["device"] == "cuda" for r in reports) else [item]


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; the first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join([":---", *["---:"] * (len(header) - 1)]) + "|")
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# the report -------------------------------------------------------------------------------------


def header_line(report: dict[str, Any]) -> str:
    """One line of provenance from whatever of it the JSON holds."""
    parts = []
    if report.get("mode"):
        parts.append(f"**{report['mode']} mode**")
    hw = report.get("hardware") or {}
    if hw:
        cpu = f"{hw.get('cpu', '?')}, {hw.get('cpu_count', '?')} cores"
        parts.append(cpu + (f", GPU {hw['gpu']}" if hw.get("gpu") else ", no GPU"))
        if hw.get("torch"):
            parts.append(f"torch {hw['torch']}")
    if report.get("commit"):
        parts.append(f"commit {report['commit']}")
    if report.get("date"):
        parts.append(report["date"])
    if report.get("wall_s") is not None:
        parts.append(f"run time {report['wall_s']:.0f} s")
    line = "; ".join(parts)
    if report.get("command"):
        line += f"\n\n`{report['command']}`"
    return line


def with_provenance(text: str, provenance_line: str) -> list[str]:
    """The section's heading (if it starts with one), the provenance, then the rest."""
    first, _, rest = text.partition("\n")
    if first.startswith("#"):
        return [first, "", provenance_line, "", rest.strip()]
    return [provenance_line, "", text]


def module_of(stem: str) -> str:
    """The bench module of ``RESULTS/STEM.json``: ``STEM`` itself or the longest module name that
    ``STEM`` extends with ``_...`` (``accuracy_quick.json`` -> ``bench/accuracy.py``)."""
    names = [p.stem for p in BENCH.glob("*.py") if p.stem != "report"]
    found = [n for n in names if stem == n or stem.startswith(n + "_")]
    if not found:
        raise SystemExit(f"no bench/*.py renders {stem}.json")
    return max(found, key=len)


def section_names(results: Path) -> list[tuple[str, str]]:
    """(JSON stem, module) of every result, in ORDER of their modules, then alphabetically."""
    pairs = [(p.stem, module_of(p.stem)) for p in sorted(results.glob("*.json"))]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(pairs, key=lambda pair: (rank.get(pair[1], len(ORDER)), pair[1], pair[0]))


def render(results: Path) -> str:
    """The whole Markdown document."""
    out = [
        "# Benchmarks",
        "",
        "Every figure below was printed by a script in `bench/` and is reproduced by the command "
        "shown above its table (`--quick` figures are marked as such; full mode is the same "
        "command without `--quick`). `python bench/report.py` rebuilds this page from the JSON "
        "in `docs/benchmarks/`.",
        "",
        NOISE,
    ]
    by_module: dict[str, list[dict[str, Any]]] = {}
    for stem, name in section_names(results):
        report = json.loads((results / f"{stem}.json").read_text())
        module = importlib.import_module(name)
        if not hasattr(module, "markdown"):
            raise SystemExit(f"bench/{name}.py has no markdown(report) for {stem}.json")
        out += ["", *with_provenance(module.markdown(report).strip(), header_line(report))]
        by_module.setdefault(name, []).append(report)
    out += not_measured(by_module)
    return "\n".join(out) + "\n"


def not_measured(by_module: dict[str, list[dict[str, Any]]]) -> list[str]:
    """A closing list of what the issue asks for and no JSON holds yet, from each module's
    optional ``pending(reports) -> list[str]``, plus every section measured in quick mode only."""
    items = []
    for name, reports in by_module.items():
        module = importlib.import_module(name)
        if hasattr(module, "pending"):
            items += module.pending(reports)
        if all(r.get("mode") == "quick" for r in reports):
            items.append(f"`bench/{name}.py` in full mode (its command without `--quick`)")
    if not items:
        return []
    return ["", "## Not measured yet", "", *[f"- {item}" for item in items]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=str(RESULTS), help="folder of the JSON results")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    text = render(Path(args.results))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"report written to {args.out}")


if __name__ == "__main__":
    main()
