"""The LSH buckets in a real Redis server (datasketch's Redis storage), started by the test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from attribution import Index
from attribution.errors import AttributionError, StorageConfigError
from attribution.evaluation import functions_of, rename_identifiers

redis = pytest.importorskip("redis")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[dict]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (scripts/system_deps.sh installs it)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        yield {"host": "127.0.0.1", "port": port}
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


def test_publish_and_query_through_redis(index: Index, index_dir, corpus_files, redis_server: dict) -> None:
    config = {"type": "redis", "redis": redis_server, "basename": b"attr-test"}
    with pytest.raises(AttributionError, match="publish"):
        Index.open(index_dir, lsh=config)
    inserted = index.publish_lsh(config)
    assert inserted > 100
    source = next(f for f in corpus_files if f.path == "Lib/statistics.py")
    fn = next(f for f in functions_of(source) if f.text.startswith("def _sum("))
    with Index.open(index_dir, lsh=config) as shared:
        report = shared.query(rename_identifiers(fn.text), detectors=("near",))
        local = index.query(rename_identifiers(fn.text), detectors=("near",))
    assert report.verdict == "copied"
    assert report.to_dict() == local.to_dict()
    keys = redis.Redis(**redis_server).keys(b"attr-test*")
    assert keys


def test_unknown_storage_type_lists_known_ones(index_dir) -> None:
    with pytest.raises(StorageConfigError, match="arrays, redis"):
        Index.open(index_dir, lsh={"type": "cassandra"})
    with pytest.raises(StorageConfigError, match="connection"):
        Index.open(index_dir, lsh={"type": "redis"})


def test_signature_job_rows_published_to_redis_are_reported(index_dir, redis_server: dict, tmp_path) -> None:
    """Rows of the PySpark signature job, published to Redis, come back as near matches."""
    from dataclasses import asdict
    from pathlib import Path

    import bm25s
    import pyarrow as pa
    import pyarrow.parquet as pq

    from attribution.fingerprint import FingerprintParams
    from attribution.remote import publish_signatures
    from attribution.sources import SourceFile
    from attribution.spark_signatures import OUTPUT_COLUMNS, chunk_rows

    # A file the local index does not hold, as a row of The Stack.
    text = Path(bm25s.__file__).read_text(encoding="utf-8")
    record = {
        "content": text,
        "max_stars_repo_name": "xhluca/bm25s",
        "max_stars_repo_path": "bm25s/__init__.py",
        "max_stars_repo_licenses": ["MIT"],
    }
    rows = list(chunk_rows([record], asdict(FingerprintParams()), 1_000_000))
    (tmp_path / "signatures").mkdir()
    table = pa.Table.from_pylist([dict(zip(OUTPUT_COLUMNS, row, strict=True)) for row in rows])
    pq.write_table(table, tmp_path / "signatures" / "part-00000.parquet")
    config = {"type": "redis", "redis": redis_server, "basename": b"remote-test"}
    assert publish_signatures(tmp_path / "signatures", config) == len(rows)

    source = SourceFile("xhluca/bm25s", "bm25s/__init__.py", "MIT", text)
    fn = max(functions_of(source), key=lambda f: len(f.text))
    with Index.open(index_dir, lsh=config) as shared:
        report = shared.query(rename_identifiers(fn.text))
        remote = [m for m in report.matches if m.segment == "remote"]
        assert report.verdict == "copied"
        assert remote and (remote[0].repo, remote[0].path, remote[0].license) == (
            "xhluca/bm25s",
            "bm25s/__init__.py",
            "MIT",
        )
        # The chunk's lines in the published file hold the function.
        assert remote[0].source_start_line <= fn.start_line <= remote[0].source_end_line
        assert "not stored here" in report.to_terminal()
        # Code from elsewhere finds nothing there.
        other = Path(pa.__file__).read_text(encoding="utf-8")
        assert not [m for m in shared.query(other[:3000]).matches if m.segment == "remote"]


def test_publishing_something_else_than_signatures_is_refused(redis_server: dict, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from attribution.remote import publish_signatures

    pq.write_table(pa.table({"content": ["x = 1"]}), tmp_path / "stack.parquet")
    config = {"type": "redis", "redis": redis_server, "basename": b"remote-bad"}
    with pytest.raises(AttributionError, match="signature job"):
        publish_signatures(tmp_path / "stack.parquet", config)
    with pytest.raises(AttributionError, match="no parquet"):
        publish_signatures(tmp_path / "nothing-here", config)
