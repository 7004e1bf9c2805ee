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
