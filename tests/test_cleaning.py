"""neurohash.data.cleaning (and load_records): explicit, counted cleaning into A/C/G/T(/N)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from neurohash.data.cleaning import Cleaning, CleaningStats, clean_records, clean_sequence
from neurohash.data.fasta import SequenceFileError, SequenceRecord, iter_records
from neurohash.data.sources import load_records

RFAM = "rfam_5_8s_rrna.fasta.gz"


def rec(seq: str, rid: str = "r", source: str = "test.fa") -> SequenceRecord:
    return SequenceRecord(rid, seq, source)


def clean_all(seqs: list[str], cfg: Cleaning) -> tuple[list[str], CleaningStats]:
    stats = CleaningStats()
    records = [rec(s, f"r{i}") for i, s in enumerate(seqs)]
    return [r.seq for r in clean_records(records, cfg, stats)], stats


@pytest.fixture(scope="module")
def rfam(shared_data: Path) -> list[SequenceRecord]:
    return list(iter_records(shared_data / RFAM))


# ---- single sequences ---------------------------------------------------------------------------


def test_uppercase_and_rna_to_dna() -> None:
    assert clean_sequence(rec("acgu"), Cleaning()) == ("ACGT", "kept")
    assert clean_sequence(rec("AcGuUu"), Cleaning()) == ("ACGTTT", "kept")


def test_without_rna_to_dna_uracil_is_not_model_alphabet() -> None:
    assert clean_sequence(rec("ACGU"), Cleaning(rna_to_dna=False)) == (None, "ambiguous")
    assert clean_sequence(rec("ACGU"), Cleaning(rna_to_dna=False, ambiguous="keep")) == (
        "ACGN",
        "kept",
    )


@pytest.mark.parametrize(
    ("mode", "replacement", "expected"),
    [
        ("drop", "A", (None, "ambiguous")),
        ("replace", "A", ("ACGTAAAA", "kept")),
        ("replace", "C", ("ACGTCCCC", "kept")),
        ("keep", "A", ("ACGTNNNN", "kept")),
    ],
)
def test_ambiguous_modes(mode: str, replacement: str, expected: tuple) -> None:
    cfg = Cleaning(ambiguous=mode, replacement=replacement)
    assert clean_sequence(rec("ACGTnRyB"), cfg) == expected


def test_every_iupac_code_is_ambiguous() -> None:
    for code in "RYSWKMBDHVN":
        assert clean_sequence(rec(f"AC{code}GT"), Cleaning()) == (None, "ambiguous")
        assert clean_sequence(rec(f"AC{code.lower()}GT"), Cleaning(ambiguous="keep")) == (
            "ACNGT",
            "kept",
        )


def test_length_limits_are_inclusive() -> None:
    cfg = Cleaning(min_len=4, max_len=6)
    assert clean_sequence(rec("ACG"), cfg) == (None, "too_short")
    assert clean_sequence(rec("ACGT"), cfg) == ("ACGT", "kept")
    assert clean_sequence(rec("ACGTAC"), cfg) == ("ACGTAC", "kept")
    assert clean_sequence(rec("ACGTACG"), cfg) == (None, "too_long")
    assert clean_sequence(rec("A" * 10_000), Cleaning()) == ("A" * 10_000, "kept")  # no max


def test_empty_sequence() -> None:
    assert clean_sequence(rec(""), Cleaning()) == (None, "empty")


@pytest.mark.parametrize("seq", ["ACG-T", "ACGX", "AC GT", "ACG1", "ACG.T", "ACG*"])
def test_non_nucleotide_characters_raise_naming_record(seq: str) -> None:
    bad = rec(seq, rid="weird_read", source="reads/sample.fa")
    with pytest.raises(SequenceFileError) as info:
        clean_sequence(bad, Cleaning(ambiguous="keep"))
    message = str(info.value)
    assert "reads/sample.fa" in message and "'weird_read'" in message
    assert "non-nucleotide" in message


def test_non_nucleotide_raises_from_stream_after_good_records() -> None:
    records = [rec("ACGT", "ok1"), rec("GGCC", "ok2"), rec("AC%GT", "broken")]
    out: list[str] = []
    with pytest.raises(SequenceFileError, match="'broken'"):
        for r in clean_records(records, Cleaning()):
            out.append(r.id)
    assert out == ["ok1", "ok2"]


# ---- streams ------------------------------------------------------------------------------------


def test_dedupe_after_cleaning_keeps_first() -> None:
    records = [rec("ACGU", "a"), rec("acgt", "b"), rec("GGGG", "c"), rec("ACGT", "d")]
    stats = CleaningStats()
    out = list(clean_records(records, Cleaning(), stats))
    assert [(r.id, r.seq) for r in out] == [("a", "ACGT"), ("c", "GGGG")]
    assert stats == CleaningStats(seen=4, kept=2, dropped={"duplicate": 2})


def test_dedupe_off_keeps_duplicates() -> None:
    seqs, stats = clean_all(["ACGT", "ACGT", "acgt"], Cleaning(dedupe=False))
    assert seqs == ["ACGT"] * 3
    assert stats.dropped == {} and stats.kept == 3


def test_replaced_ambiguity_can_create_duplicates() -> None:
    seqs, stats = clean_all(["ACGN", "ACGA"], Cleaning(ambiguous="replace", replacement="A"))
    assert seqs == ["ACGA"]
    assert stats.dropped == {"duplicate": 1}


def test_stats_count_every_reason() -> None:
    seqs = ["ACGT", "", "ACGN", "AC", "ACGTACGTAC", "acgt", "TTTT"]
    out, stats = clean_all(seqs, Cleaning(min_len=3, max_len=8))
    assert out == ["ACGT", "TTTT"]
    assert stats.seen == 7 and stats.kept == 2
    assert stats.dropped == {
        "empty": 1,
        "ambiguous": 1,
        "too_short": 1,
        "too_long": 1,
        "duplicate": 1,
    }
    assert stats.kept + sum(stats.dropped.values()) == stats.seen


def test_clean_records_is_lazy_and_keeps_id_and_source() -> None:
    gen = clean_records(iter([rec("acgu", "x1", "f.fa")]), Cleaning())
    assert not isinstance(gen, list)
    assert list(gen) == [SequenceRecord("x1", "ACGT", "f.fa")]


# ---- real RNA data (U, N and other IUPAC codes) -------------------------------------------------


def test_rfam_drop(rfam: list[SequenceRecord]) -> None:
    assert any("U" in r.seq for r in rfam)
    ambiguous = [r for r in rfam if set(r.seq) - set("ACGU")]
    assert any("N" in r.seq for r in ambiguous)
    assert any(set(r.seq) - set("ACGUN") for r in ambiguous)  # R, Y, S, K, ... too

    stats = CleaningStats()
    out = list(clean_records(rfam, Cleaning(), stats))
    expected: list[tuple[str, str]] = []
    seen: set[str] = set()
    for r in rfam:  # independent reimplementation of the default cleaning
        dna = r.seq.upper().replace("U", "T")
        if re.search("[^ACGT]", dna) or dna in seen:
            continue
        seen.add(dna)
        expected.append((r.id, dna))
    assert [(r.id, r.seq) for r in out] == expected
    assert stats.seen == len(rfam)
    assert stats.dropped["ambiguous"] == len(ambiguous)
    assert stats.dropped["duplicate"] == len(rfam) - len(ambiguous) - len(expected) > 0
    assert stats.kept == len(out)


@pytest.mark.parametrize(("mode", "alphabet"), [("replace", set("ACGT")), ("keep", set("ACGTN"))])
def test_rfam_replace_and_keep(rfam: list[SequenceRecord], mode: str, alphabet: set) -> None:
    stats = CleaningStats()
    out = {r.id: r.seq for r in clean_records(rfam, Cleaning(ambiguous=mode), stats)}
    assert "ambiguous" not in stats.dropped
    assert stats.kept == len(out) == stats.seen - stats.dropped.get("duplicate", 0)
    assert set().union(*map(set, out.values())) == alphabet
    for r in rfam:
        if r.id in out:  # lengths never change, ambiguous positions map to the one symbol
            cleaned = out[r.id]
            assert len(cleaned) == len(r.seq)
            for raw, new in zip(r.seq, cleaned, strict=True):
                if raw in "ACG":
                    assert new == raw
                elif raw == "U":
                    assert new == "T"
                else:
                    assert new == ("A" if mode == "replace" else "N")


def test_rfam_length_window(rfam: list[SequenceRecord]) -> None:
    stats = CleaningStats()
    out = list(clean_records(rfam, Cleaning(min_len=150, max_len=160), stats))
    assert all(150 <= len(r.seq) <= 160 for r in out)
    assert stats.dropped["too_short"] > 0 and stats.dropped["too_long"] > 0


# ---- load_records -------------------------------------------------------------------------------


def write_fasta(path: Path, records: list[tuple[str, str]], compress: bool = False) -> Path:
    text = "".join(f">{rid}\n{seq}\n" for rid, seq in records).encode()
    path.write_bytes(gzip.compress(text) if compress else text)
    return path


def test_load_records_subsample_is_seeded_and_in_file_order(shared_data: Path) -> None:
    path = shared_data / RFAM
    full, full_stats = load_records(path, Cleaning())
    a, stats = load_records(path, Cleaning(), max_seqs=50, seed=1)
    b, _ = load_records(path, Cleaning(), max_seqs=50, seed=1)
    c, _ = load_records(path, Cleaning(), max_seqs=50, seed=2)
    assert a == b and a != c and len(a) == 50
    assert stats == full_stats  # the whole file is read and counted either way
    position = {r.id: i for i, r in enumerate(full)}
    order = [position[r.id] for r in a]
    assert order == sorted(order)
    assert order[-1] > len(full) // 2  # uniform over the file, not its first records


def test_load_records_glob_dedupes_across_files(tmp_path: Path) -> None:
    write_fasta(tmp_path / "s1.fa", [("s1.a", "ACGTACGT"), ("s1.b", "GGGGCCCC")])
    write_fasta(tmp_path / "s2.fa.gz", [("s2.a", "acgtacgt"), ("s2.b", "TTTTAAAA")], True)
    records, stats = load_records(str(tmp_path / "s*.fa*"), Cleaning())
    assert [r.id for r in records] == ["s1.a", "s1.b", "s2.b"]
    assert stats == CleaningStats(seen=4, kept=3, dropped={"duplicate": 1})
    assert records[2].source == str(tmp_path / "s2.fa.gz")


def test_load_records_errors(tmp_path: Path) -> None:
    with pytest.raises(SequenceFileError, match="matches no file"):
        load_records(str(tmp_path / "*.fasta"), Cleaning())
    path = write_fasta(tmp_path / "amb.fa", [("a", "ACGN"), ("b", "NNNN")])
    with pytest.raises(SequenceFileError, match="no record survived cleaning"):
        load_records(path, Cleaning())
