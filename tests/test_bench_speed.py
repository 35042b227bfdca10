"""The speed benchmarks run end to end with tiny options and write their JSON, PNG and Markdown.

Benchmarks are not tests: nothing here asserts a timing, only that each script runs on real data
and reports sane values (positive rates, recalls in [0, 1]), and that ``bench/report.py`` turns
the JSON into ``benchmarks.md`` with every plot it names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import load_bench

pytestmark = pytest.mark.slow


def written(path: Path) -> dict:
    assert path.is_file(), path
    report = json.loads(path.read_text())
    assert report["command"].startswith("python bench/") and report["wall_s"] > 0
    for plot in report.get("plots", []):
        assert (path.parent / plot).stat().st_size > 1000, plot
    return report


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("benchmarks")


def test_distance(results: Path) -> None:
    out = results / "distance.json"
    load_bench("distance").main(["--quick", "--out", str(out)])
    report = written(out)
    for name in ("V4 reads (~150 bp)", "Greengenes 16S (~1.5 kb)"):
        assert [m["pairs_per_s"] > 0 for m in report[name]["methods"]] == [True] * 3
    # each banded scan was checked against the full one
    assert [(n["sequences"], min(n["banded_s"], n["full_s"]) > 0) for n in report["nearest"]] == [
        (200, True)
    ] * 2


def test_embed(results: Path, one_thread: None) -> None:
    out = results / "embed.json"
    load_bench("embed").main(
        [
            "--quick",
            "--device",
            "cpu",
            "--sets",
            "v4",
            "--sequences",
            "32",
            "--batch",
            "8",
            "--big-batch",
            "16",
            "--bf16-batch",
            "8",
            "--seconds",
            "0.05",
            "--pipeline-batches",
            "2",
            "--out",
            str(out),
        ]
    )
    entry = written(out)["sets"]["V4 reads (~150 bp)"]
    assert entry["parameters"] > 1_000_000 and entry["flops_per_seq"] > 1e6
    assert [v["precision"] for v in entry["variants"]] == ["fp32", "fp32", "bf16"]
    assert all(v["seq_per_s"] > 0 for v in entry["variants"])
    best = max(entry["variants"], key=lambda v: v["seq_per_s"])  # the data path's batch size
    assert (
        entry["pipeline"]["sequences"] == 2 * best["batch"] and entry["pipeline"]["seq_per_s"] > 0
    )
    assert entry["attention_ops"]["fp32"], "the profiler saw no attention op"


def test_train_speed(results: Path, one_thread: None, tmp_path: Path) -> None:
    out = results / "train_speed.json"
    load_bench("train_speed").main(
        [
            "--quick",
            "--device",
            "cpu",
            "--steps",
            "4",
            "--val-every",
            "2",
            "--seqs",
            "300",
            "--eval-size",
            "40",
            "--batch-size",
            "8",
            "--workers",
            "0",
            "--target-rmse",
            "100",
            "--workdir",
            str(tmp_path),
            "--out",
            str(out),
        ]
    )
    report = written(out)
    assert report["steps"] == 4 and len(report["curve"]) == 2
    assert report["pairs"] > report["steps"] * 8 and report["pairs_per_s"] > 0
    assert report["time_to_target_s"] == report["curve"][0]["train_s"]  # 100% is reached at once


def test_search_scale(results: Path, checkpoint: Path, tmp_path: Path, one_thread: None) -> None:
    """Queries are embedded in-process too: one thread (see ``one_thread``)."""
    out = results / "search_scale.json"
    args = ["--quick", "--ckpt", str(checkpoint), "--sizes", "300", "--queries", "8"]
    args += ["--candidates", "20", "--refine", "2", "--minhash-perm", "32"]
    args += ["--workdir", str(tmp_path), "--out", str(out)]
    load_bench("search_scale").main(args)
    (size,) = written(out)["sizes"]
    assert size["regions"] == size["database"]["regions"] == 300 and not size["build_reused"]
    assert size["database"]["bytes_per_region"] > 16  # a 128-bit code, its posting and sequence
    assert {m["index"] for m in size["methods"]} == {"flat", "hnsw", "scan"}
    for method in size["methods"]:
        assert 0 <= method["recall@10"] <= 1 and method["qps"] > 0
    reranked = [m for m in size["methods"] if m["method"] == "hash + refine + rerank"]
    assert all(m["recall@1"] > 0 for m in reranked)

    shards = sorted((tmp_path / "n300" / "shards").glob("shard-*"))
    written_at = [path.stat().st_mtime_ns for path in shards]
    load_bench("search_scale").main(
        [*args, "--reuse-build"]
    )  # predict.py resumes: nothing re-embedded
    (again,) = written(out)["sizes"]
    assert again["build_reused"] and [p.stat().st_mtime_ns for p in shards] == written_at
    flat = lambda s: [m["recall@10"] for m in s["methods"] if m["index"] == "flat"]  # noqa: E731
    assert flat(again) == flat(size)


def test_store(results: Path, checkpoint: Path, tmp_path: Path) -> None:
    """Reads and a genome through predict.py, index, index --append, compact and search."""
    out = results / "store.json"
    args = ["--quick", "--ckpt", str(checkpoint), "--queries", "10", "--workdir", str(tmp_path)]
    load_bench("store").main([*args, "--out", str(out)])
    report = written(out)
    lean, segmented = report["sizes"]["lean"], report["sizes"]["segmented"]
    assert lean["regions"] == segmented["regions"] > 2000 and segmented["segments"] > 1
    assert lean["bytes_embeddings"] == 0 < segmented["bytes_embeddings"]
    assert lean["input_bytes"] > 0 and lean["compression_ratio"] > 1
    assert report["sizes"]["compacted"]["segments"] == 1
    assert all(step["peak_rss_mb"] > 0 for step in report["steps"].values())
    for found in report["search"].values():
        assert 0 <= found["recall@10"] <= 1 and found["queries_per_s"] > 0


def test_store_scale(results: Path, checkpoint: Path, tmp_path: Path) -> None:
    out = results / "store_scale.json"
    args = ["--quick", "--ckpt", str(checkpoint), "--workdir", str(tmp_path), "--out", str(out)]
    load_bench("store_scale").main(args)
    report = written(out)
    seg, one = report["sizes"]["segmented"], report["sizes"]["one segment"]
    assert seg["regions"] == one["regions"] and seg["segments"] > one["segments"] == 1
    assert report["search"]["segmented"] == report["search"]["one segment"] | {
        "queries_per_s": report["search"]["segmented"]["queries_per_s"]
    }  # flat indexes: the same hits


def test_codes(
    results: Path, checkpoint: Path, v4_small: Path, tmp_path: Path, one_thread: None
) -> None:
    """Candidate recall of the tiny model's codes, its SimHash and ITQ, the baselines; the
    user's commands (a database of codes alone: the Hamming shortlist refined by the
    query-weighted distance, its top 100 re-ranked) find what that distance's candidate recall
    at 100 says.

    One thread: ITQ's 100 small SVDs took 0.2-0.4 s each on two contended threads (~25 s),
    1-3 ms on one. The 2,000 reads of ``v4_small`` hold the 1,060 sampled, without a scan of
    all 100k V4 reads."""
    out = results / "codes.json"
    args = ["--quick", "--ckpt", f"tiny={checkpoint}", "--fasta", str(v4_small)]
    args += ["--bits", "64", "128", "--cli", "--workdir", str(tmp_path), "--out", str(out)]
    load_bench("codes").main(args)
    report = written(out)
    curves = report["curves"]
    assert {"5-mer cosine", "1-bit MinHash 64", "tiny: ITQ 128", "tiny: float embedding"} <= set(
        curves
    )
    for curve in curves.values():
        values = [curve["recall"][c] for c in sorted(curve["recall"], key=int)]
        assert all(0 <= v <= 1 for v in values) and values == sorted(values)  # grows with C
    (weighted,) = (c["recall"]["100"] for n, c in curves.items() if n.endswith("query-weighted"))
    assert report["cli"]["tiny"]["recall@10"] == pytest.approx(weighted, abs=0.02)


def test_genomes(results: Path, checkpoint: Path, tmp_path: Path) -> None:
    """Genome slices through predict.py, index and search --rerank, beside every installed peer
    (minimap2, BLAST, MMseqs2, Mash; the absent ones are skipped with a note)."""
    import shutil

    out = results / "genomes.json"
    args = ["--quick", "--ckpt", str(checkpoint), "--workdir", str(tmp_path), "--out", str(out)]
    load_bench("genomes").main(args)
    report = written(out)
    present = {"neurohash"}
    present |= {"minimap2"} if shutil.which("minimap2") or _importable("mappy") else set()
    present |= {"BLAST"} if shutil.which("blastn") and shutil.which("makeblastdb") else set()
    present |= {"MMseqs2"} if shutil.which("mmseqs") else set()
    assert set(report["results"]) == present
    assert ("Mash" in report["tools"]) == bool(shutil.which("mash") or _importable("sourmash"))
    assert report["stored"]["bases"] > 0 and report["stored"]["regions"] > 0
    for name, tool in report["tools"].items():
        assert tool["build_s"] > 0 and tool["bytes_per_base"] > 0, name
    for name, tasks in report["results"].items():
        assert set(tasks) == {"a", "b", "c"}, name
        for task, entry in tasks.items():
            assert entry["queries_per_s"] > 0
            groups = [entry["all"], *entry["groups"].values()]
            if task == "a":
                groups += [g[s] for g in entry["groups"].values() for s in ("forward", "reverse")]
            for group in groups:
                assert group["n"] > 0 and 0 <= group["recall@1"] <= group["recall@10"] <= 1
    for entry in report["genome_level"].values():
        assert entry["truth"] and set(entry["calls"]) <= present | {"Mash"}
    assert 0 <= report["reads_covered_by_regions"] <= 1


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_report(results: Path, tmp_path: Path) -> None:
    """Runs after the benchmarks above (file order): every JSON becomes a section."""
    md = tmp_path / "benchmarks.md"
    load_bench("report").main(["--results", str(results), "--out", str(md)])
    text = md.read_text()
    for heading in (
        "## Exact edit distance",
        "## Embedding throughput",
        "## Training speed",
        "## Search at scale",
        "## Database on disk",
        "## Database at scale",
        "## Codes: candidate recall",
    ):
        assert heading in text
    assert text.count("quick mode") >= 3 and "python bench/embed.py --quick" in text
    for line in text.splitlines():
        if line.startswith("![") and "(benchmarks/" in line:
            assert (results / line.split("(benchmarks/")[1].rstrip(")")).is_file(), line
