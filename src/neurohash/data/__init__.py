"""Data flow: FASTA/FASTQ -> records -> cleaned records -> tokens, plus exact edit distances."""
