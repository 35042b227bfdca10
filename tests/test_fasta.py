"""neurohash.data.fasta: streaming FASTA/FASTQ reading and errors that name the file and record."""

from __future__ import annotations

import gzip
import inspect
import itertools
from pathlib import Path

import pytest

from neurohash.data.fasta import SequenceFileError, SequenceRecord, iter_records

FASTA = b">r1 first read\nACGT\nAC\n>r2\nGGGG\n>r3\tdesc\nttaa\n"
FASTQ = b"@q1 one\nACGT\n+\nIIII\n@q2\nGGC\n+q2\nIII\n"


def read_all(path: Path) -> list[SequenceRecord]:
    return list(iter_records(path))


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_reads_fasta(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / ("reads.fa.gz" if compress else "reads.fa")
    path.write_bytes(gzip.compress(FASTA) if compress else FASTA)
    records = read_all(path)
    # id is the first word of the header; multi-line sequences are joined; case is preserved
    assert [(r.id, r.seq) for r in records] == [("r1", "ACGTAC"), ("r2", "GGGG"), ("r3", "ttaa")]
    assert all(r.source == str(path) for r in records)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_reads_fastq(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / ("reads.fq.gz" if compress else "reads.fq")
    path.write_bytes(gzip.compress(FASTQ) if compress else FASTQ)
    assert [(r.id, r.seq) for r in read_all(path)] == [("q1", "ACGT"), ("q2", "GGC")]


def test_format_detected_from_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "reads.txt"  # gzipped FASTQ under an uninformative name
    path.write_bytes(gzip.compress(FASTQ))
    assert [r.id for r in read_all(path)] == ["q1", "q2"]


def test_accepts_str_and_pathlike(tmp_path: Path) -> None:
    path = tmp_path / "reads.fa"
    path.write_bytes(FASTA)
    assert read_all(path) == list(iter_records(str(path)))


def test_iter_records_is_a_lazy_generator(tmp_path: Path) -> None:
    missing = tmp_path / "missing.fa"
    gen = iter_records(missing)  # nothing is opened until the first record is asked for
    assert inspect.isgenerator(gen)
    with pytest.raises(SequenceFileError):
        next(gen)


def test_streams_first_records_of_real_file(shared_data: Path) -> None:
    path = shared_data / "study550_v4_amplicons.fasta.gz"
    with gzip.open(path, "rt") as handle:  # independent reading of the first three records
        lines = [next(handle).rstrip("\n") for _ in range(6)]
    expected = [(lines[i][1:].split()[0], lines[i + 1]) for i in (0, 2, 4)]
    gen = iter_records(path)
    first = list(itertools.islice(gen, 3))
    gen.close()
    assert [(r.id, r.seq) for r in first] == expected
    assert first[0].id == "L1S105.273315_0"  # header description after the id is dropped


def test_real_files_are_read_completely(shared_data: Path) -> None:
    records = read_all(shared_data / "rfam_5_8s_rrna.fasta.gz")
    assert len(records) == 13034  # count stated in shared/data/README.md
    assert all(r.id and r.seq for r in records)
    assert all(93 <= len(r.seq) <= 183 for r in records)


# ---- errors -------------------------------------------------------------------------------------


def expect_error(path: Path, *fragments: str) -> str:
    with pytest.raises(SequenceFileError) as info:
        read_all(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope.fasta", "no such file")


def test_directory(tmp_path: Path) -> None:
    expect_error(tmp_path, "is a directory")


def test_error_is_a_value_error(tmp_path: Path) -> None:
    assert issubclass(SequenceFileError, ValueError)
    with pytest.raises(ValueError):
        read_all(tmp_path / "nope.fasta")


def test_text_that_is_not_fasta(tmp_path: Path) -> None:
    path = tmp_path / "notes.fa"
    path.write_text("hello world\nthis is not a sequence file\n")
    expect_error(path, "before the first record", "not valid FASTA/FASTQ")


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.fa"
    path.write_bytes(bytes(range(256)) * 8)
    expect_error(path, "before the first record")


def test_binary_garbage_after_fasta_header_char(tmp_path: Path) -> None:
    path = tmp_path / "garbage.fa"
    path.write_bytes(b">" + bytes(range(256)) * 8)
    expect_error(path, "unreadable")


def test_malformed_fastq_names_last_good_record(tmp_path: Path) -> None:
    path = tmp_path / "bad.fq"
    path.write_bytes(FASTQ + b"@q3\nACGT\n+\nII\n")  # quality shorter than sequence
    expect_error(path, "after record 2 ('q2')", "not valid FASTA/FASTQ")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.fa"
    path.write_bytes(b"")
    expect_error(path, "no sequence records")


def test_empty_gzipped_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.fa.gz"
    path.write_bytes(gzip.compress(b""))
    expect_error(path, "no sequence records")


@pytest.mark.parametrize("header", [b">", b">   "], ids=["bare", "blank"])
def test_empty_header_names_record(tmp_path: Path, header: bytes) -> None:
    path = tmp_path / "noname.fa"
    path.write_bytes(b">a\nACGT\n>b x\nGG\n" + header + b"\nACGT\n>d\nA\n")
    expect_error(path, "after record 2 ('b')", "record 3 has an empty header")


def test_empty_first_header(tmp_path: Path) -> None:
    path = tmp_path / "noname.fa"
    path.write_bytes(b">\nACGT\n")
    expect_error(path, "before the first record", "record 1 has an empty header")


def test_truncated_gzip_of_real_file(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "rfam_5_8s_rrna.fasta.gz"
    full = read_all(source)
    data = source.read_bytes()
    path = tmp_path / "cut.fasta.gz"
    path.write_bytes(data[: len(data) // 2])

    good: list[SequenceRecord] = []
    with pytest.raises(SequenceFileError) as info:
        for rec in iter_records(path):
            good.append(rec)
    message = str(info.value)
    assert str(path) in message and "truncated" in message
    # every record yielded before the error is complete and correct (no partial last record) ...
    assert 0 < len(good) < len(full)
    assert [(r.id, r.seq) for r in good] == [(r.id, r.seq) for r in full[: len(good)]]
    # ... and the message names the last good one
    assert f"after record {len(good)} ('{good[-1].id}')" in message


@pytest.mark.parametrize("keep", [100, -8], ids=["header-only", "no-trailer"])
def test_truncated_gzip_edges(shared_data: Path, tmp_path: Path, keep: int) -> None:
    data = (shared_data / "rfam_5_8s_rrna.fasta.gz").read_bytes()
    path = tmp_path / "cut.fasta.gz"
    path.write_bytes(data[:keep])
    expect_error(path, "truncated")
