"""Sequence encoders: tokens (B, L) with 0 as padding -> embeddings (B, embedding_dim)."""

from neurohash.models.encoders.cnn import CNNEncoder
from neurohash.models.encoders.gru import GRUEncoder
from neurohash.models.encoders.kmer import KmerEncoder
from neurohash.models.encoders.linear import LinearEncoder
from neurohash.models.encoders.mlp import MLPEncoder
from neurohash.models.encoders.transformer import TransformerEncoder

__all__ = [
    "CNNEncoder",
    "GRUEncoder",
    "KmerEncoder",
    "LinearEncoder",
    "MLPEncoder",
    "TransformerEncoder",
]
