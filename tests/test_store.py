"""The compact sequence store: 2-bit packing with N runs, IUPAC codes and lowercase kept
exactly, pieces of overlapping regions, de-duplication, and reads that cross zstd blocks."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from neurohash.index import store
from neurohash.index.store import (
    SequenceStore,
    StoreError,
    dedupe_pieces,
    pack,
    pieces_of_regions,
    unpack,
    write_store,
)

ODD = [
    "",
    "A",
    "ACGT",
    "ACGTA",
    "NNNNNNNNNN",
    "acgtnnnnACGTNNNN",
    "ACGTRYKMSWBDHVN-acgt",  # IUPAC codes and a gap stay what they were
    "ttttGGGGccccAAAA" * 50,
    "A" * 1000 + "N" * 433 + "c" * 7,  # a run of N, as in a scaffold
]


def random_sequences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice("ACGTACGTACGTacgtNNRY") for _ in range(rng.randint(0, 900)))
        for _ in range(n)
    ]


@pytest.mark.parametrize("seq", ODD)
def test_pack_round_trip(seq: str) -> None:
    packed = pack(seq)
    assert len(packed.bases) == -(-len(seq) // 4)  # 2 bits a base
    other = (packed.other_start, packed.other_length, packed.other_symbol)
    lower = (packed.lower_start, packed.lower_length)
    assert unpack(np.frombuffer(packed.bases, np.uint8), packed.length, other, lower) == seq


def test_runs_hold_what_two_bits_cannot() -> None:
    packed = pack("ACNNNGTRac")
    assert packed.other_start.tolist() == [2, 7] and packed.other_length.tolist() == [3, 1]
    assert packed.other_symbol == b"NR"
    assert packed.lower_start.tolist() == [8] and packed.lower_length.tolist() == [2]


def test_store_reads_pieces_and_stretches_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "BLOCK_BYTES", 64)  # many small blocks: reads cross them
    pieces = ODD + random_sequences(60)
    write_store(tmp_path, pieces)
    reader = SequenceStore(tmp_path)
    assert len(reader) == len(pieces) and len(reader.block_starts) > 10
    rng = random.Random(1)
    for number, seq in enumerate(pieces):
        assert reader.read(number) == seq
        for _ in range(5):
            a = rng.randint(0, len(seq))
            b = rng.randint(a, len(seq))
            assert reader.read(number, a, b - a) == seq[a:b]
    starts = np.array([1, 0, 5]), np.array([3, 0, 100])
    wanted = [pieces[10][1:4], pieces[0][:0], pieces[20][5:105]]
    assert reader.read_many(np.array([10, 0, 20]), *starts) == wanted
    with pytest.raises(StoreError, match="outside piece"):
        reader.read(3, 2, 10)


def test_store_takes_about_two_bits_a_base(tmp_path: Path) -> None:
    rng = random.Random(2)
    pieces = ["".join(rng.choice("ACGT") for _ in range(5000)) for _ in range(20)]
    write_store(tmp_path, pieces)
    on_disk = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert on_disk < sum(map(len, pieces)) // 4 + 4096  # the piece table: a few kB


def test_overlapping_regions_become_one_piece() -> None:
    genome = "".join(random.Random(3).choice("ACGT") for _ in range(300))
    regions = [(0, 0, 100), (0, 50, 150), (0, 150, 200), (0, 250, 300), (1, 0, 10)]
    record, start, end = (np.array(column) for column in zip(*regions, strict=True))
    seqs = [genome[a:b] if r == 0 else "ACGTACGTAC" for r, a, b in regions]
    pieces, piece_of, offset = pieces_of_regions(record, start, end, seqs)
    assert pieces == [genome[0:200], genome[250:300], "ACGTACGTAC"]  # touching regions join
    assert piece_of.tolist() == [0, 0, 0, 1, 2] and offset.tolist() == [0, 50, 150, 0, 0]
    for (_, a, b), p, o, seq in zip(regions, piece_of, offset, seqs, strict=True):
        assert pieces[p][o : o + b - a] == seq


def test_identical_pieces_are_stored_once() -> None:
    unique, number = dedupe_pieces(["ACGT", "TTTT", "ACGT", "acgt"])
    assert unique == ["ACGT", "TTTT", "acgt"] and number.tolist() == [0, 1, 0, 2]


def test_region_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(StoreError, match="holds 3 bases, not 4"):
        pieces_of_regions(np.array([0]), np.array([0]), np.array([4]), ["ACG"])
