"""neurohash: neural edit-distance embeddings and hash codes for DNA similarity search."""

__version__ = "0.1.0"
