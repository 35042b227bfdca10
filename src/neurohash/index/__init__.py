"""The hash database path: shards (their format and the job that writes them), segments built
from them with their compact sequence store, the database of segments, and its search."""
