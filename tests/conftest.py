"""Shared fixtures: the real sequence files in ../shared/data (never copied into the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurohash.data.cleaning import Cleaning
from neurohash.data.fasta import SequenceRecord
from neurohash.data.sources import load_records

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
V4_FILE = "study550_v4_amplicons.fasta.gz"
RFAM_FILE = "rfam_5_8s_rrna.fasta.gz"
INFLUENZA_FILE = "influenza_a_segments.fasta.gz"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the real test data (skips the test when it is not there)."""
    if not (SHARED_DATA / V4_FILE).is_file():
        pytest.skip(f"real test data not found in {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def v4_records(shared_data: Path) -> list[SequenceRecord]:
    """400 cleaned V4 amplicon reads, reservoir-sampled (seed 0) across the whole file."""
    records, _ = load_records(shared_data / V4_FILE, Cleaning(), max_seqs=400, seed=0)
    return records
