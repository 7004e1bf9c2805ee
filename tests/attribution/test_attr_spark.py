"""The PySpark signature job in local mode, on a Stack-schema parquet shard of real code."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attribution.fingerprint import FingerprintParams, fingerprint

STDLIB = Path(sysconfig.get_paths()["stdlib"])


pyspark = pytest.importorskip("pyspark")
FILES = ("heapq.py", "bisect.py", "colorsys.py", "fnmatch.py")


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no JVM (scripts/system_deps.sh installs default-jre-headless)")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[1]")
        .appName("stackcoder-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        # A JVM that starts fast: the job is tiny, so the C1 compiler and serial GC suffice.
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_signatures_over_a_stack_shard_match_the_index(spark, tmp_path: Path) -> None:
    from attribution.spark_signatures import compute_signatures

    rows = [
        {
            "content": (STDLIB / name).read_text(),
            "max_stars_repo_name": "python/cpython",
            "max_stars_repo_path": f"Lib/{name}",
            "max_stars_repo_licenses": ["PSF-2.0"],
        }
        for name in FILES
    ]
    rows.append({"content": "\x00\x01", "max_stars_repo_name": "a/b", "max_stars_repo_path": "x.bin",
                 "max_stars_repo_licenses": []})  # fmt: skip
    shard = tmp_path / "shard.parquet"
    pq.write_table(pa.Table.from_pylist(rows), shard, row_group_size=2)
    out = tmp_path / "signatures"
    count = compute_signatures(spark, [str(shard)], str(out))
    table = pq.read_table(out).to_pylist()
    assert count == len(table) > len(FILES)
    assert {r["path"] for r in table} == {f"Lib/{n}" for n in FILES}
    assert all(
        r["license"] == "PSF-2.0" and r["url"].startswith("https://github.com/python/cpython/") for r in table
    )
    params = FingerprintParams()
    heap = sorted((r for r in table if r["path"] == "Lib/heapq.py"), key=lambda r: r["start_line"])
    local = fingerprint((STDLIB / "heapq.py").read_text(), "heapq.py", params)
    assert [r["start_line"] for r in heap] == local.chunk_starts.tolist()
    for i, r in enumerate(heap):
        assert np.array_equal(np.frombuffer(r["raw_signature"], "<u4"), local.streams["raw"].signatures[i])
        assert np.array_equal(np.frombuffer(r["norm_signature"], "<u4"), local.streams["norm"].signatures[i])
