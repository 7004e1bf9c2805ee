"""Chunk signatures computed elsewhere (the PySpark job), published to a shared Redis LSH.

At Stack scale no single machine holds the corpus: ``attribution.spark_signatures`` writes one
parquet row per chunk (repository, path, license, URL, lines, raw and identifier-normalised
MinHash signatures). :func:`publish_signatures` inserts those rows into datasketch's Redis
``MinHashLSH`` (the same storage ``stackcoder index publish-lsh`` fills) under keys that carry
the chunk's provenance, and keeps each signature in a Redis hash beside the buckets. An index
opened with that Redis storage then reports such chunks as ``near`` matches, scored by the
share of equal MinHash values (an estimate of the Jaccard similarity: with 128 permutations its
standard error is at most 0.045), since their shingle sets never left the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from attribution.errors import AttributionError
from attribution.fingerprint import STREAMS, FingerprintParams

__all__ = ["REMOTE_PREFIX", "publish_signatures", "remote_record", "signature_table", "read_rows"]

REMOTE_PREFIX = b"remote:"
_PROVENANCE = ("repo", "path", "license", "url", "start_line", "end_line")
_BATCH_ROWS = 2_048


def signature_table(basename: bytes, stream: str) -> bytes:
    """Name of the Redis hash holding the signatures of published remote chunks."""
    return basename + b"_" + stream.encode() + b"_remote_signatures"


def remote_record(key: bytes) -> dict | None:
    """The provenance carried by a remote chunk's key, or None for a key of an index segment."""
    if not key.startswith(REMOTE_PREFIX):
        return None
    return json.loads(key[len(REMOTE_PREFIX) :])


def read_rows(folder: str | Path) -> Iterator[dict]:
    """Rows of the signature job's parquet output, read in batches."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else [folder]
    if not files or not all(f.is_file() for f in files):
        raise AttributionError(
            f"{folder} holds no parquet files; pass the --out folder of attribution.spark_signatures."
        )
    for file in files:
        parquet = pq.ParquetFile(file)
        missing = {*_PROVENANCE, *(f"{s}_signature" for s in STREAMS)} - set(parquet.schema_arrow.names)
        if missing:
            raise AttributionError(
                f"{file} lacks the columns {', '.join(sorted(missing))}; is it the signature job's output?"
            )
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
            yield from batch.to_pylist()


def publish_signatures(folder: str | Path, config: dict, progress: bool = False) -> int:
    """Insert the chunk signatures of the job's output into the Redis LSH of ``config``.

    ``config`` is an LSH storage config ``{"type": "redis", "redis": {...}, "basename": ...}``;
    the LSH bands are those an index build chooses, so an index opened with the same config
    finds these chunks. Returns the number of chunks published.
    """
    import redis

    from attribution.build import CANDIDATE_THRESHOLD
    from attribution.lsh import RedisLSH, optimal_bands

    params = FingerprintParams()
    bands, rows = optimal_bands(CANDIDATE_THRESHOLD, params.num_perm)
    basename = config.get("basename", b"stackcoder")
    basename = basename if isinstance(basename, bytes) else str(basename).encode()
    stores = {
        s: RedisLSH(
            {**config, "basename": basename + b"_" + s.encode()}, bands, rows, params.num_perm, params.seed
        )
        for s in STREAMS
    }
    client = redis.Redis(**config["redis"])
    bar = _progress(progress)
    total = 0
    pending: list[dict] = []
    try:
        for row in read_rows(folder):
            pending.append(row)
            if len(pending) >= _BATCH_ROWS:
                total += _publish_batch(pending, stores, client, basename, params.num_perm)
                bar.update(len(pending))
                pending = []
        if pending:
            total += _publish_batch(pending, stores, client, basename, params.num_perm)
            bar.update(len(pending))
    finally:
        bar.close()
        client.close()
    return total


def _publish_batch(rows: list[dict], stores: dict, client, basename: bytes, num_perm: int) -> int:
    keys = [
        REMOTE_PREFIX + json.dumps({k: row[k] for k in _PROVENANCE}, separators=(",", ":")).encode()
        for row in rows
    ]
    for stream, store in stores.items():
        signatures = np.stack([np.frombuffer(row[f"{stream}_signature"], dtype="<u4") for row in rows])
        if signatures.shape[1] != num_perm:
            raise AttributionError(
                f"the signatures have {signatures.shape[1]} permutations, the index {num_perm}; "
                "compute them with the same fingerprint settings."
            )
        empty = np.all(signatures == np.iinfo(np.uint32).max, axis=1)  # a chunk without shingles
        kept = [k for k, e in zip(keys, empty, strict=True) if not e]
        store.insert_many(kept, signatures[~empty])
        table = signature_table(basename, stream)
        with client.pipeline(transaction=False) as pipe:
            for key, signature in zip(kept, signatures[~empty], strict=True):
                pipe.hset(table, key, signature.astype("<u4").tobytes())
            pipe.execute()
    return len(rows)


def _progress(enabled: bool):
    from tqdm import tqdm

    return tqdm(total=None, unit="chunk", desc="publishing", disable=not enabled)
