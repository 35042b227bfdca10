"""The hash database path: shards (their format and the job that writes them), then the
database built from them (``neurohash.database``) and its search (``neurohash.search``)."""
