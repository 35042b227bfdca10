"""Encoders (sequence -> embedding), geometries (embedding pair -> distance) and losses."""
