"""PySpark job: chunk signatures of Stack-schema parquet shards, at corpus scale.

Each executor fingerprints its share of the files with the same code as ``stackcoder index
build`` (same filters, chunks, shingles and datasketch ``affine32`` MinHash), and the job writes
one parquet row per chunk: ``repo, path, license, url, start_line, end_line`` and the raw and
identifier-normalised signatures as little-endian uint32 bytes. Those rows can feed a shared
datasketch LSH (Redis) or a dedup pass, without one machine reading the whole corpus.

Run: ``python -m attribution.spark_signatures SHARD.parquet... --out DIR [--master local[*]]``
(or through ``spark-submit``). PySpark is an optional dependency: ``pip install stackcoder[spark]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict

from attribution.errors import AttributionError
from attribution.fingerprint import FingerprintParams, fingerprint
from attribution.sources import STACK_COLUMNS, SkipStats, _Filter, _stack_record

__all__ = ["OUTPUT_COLUMNS", "chunk_rows", "compute_signatures", "main"]

OUTPUT_COLUMNS = (
    "repo", "path", "license", "url", "start_line", "end_line", "raw_signature", "norm_signature",
)  # fmt: skip


def chunk_rows(records: Iterable[dict], params: dict, max_bytes: int) -> Iterator[tuple]:
    """Rows of :data:`OUTPUT_COLUMNS` for Stack records (runs on the executors)."""
    fp_params = FingerprintParams(**params)
    flt = _Filter(max_bytes, None, SkipStats())
    for record in records:
        source = _stack_record(record, flt)
        if source is None:
            continue
        fp = fingerprint(source.content, source.path, fp_params)
        raw, norm = fp.streams["raw"].signatures, fp.streams["norm"].signatures
        for i in range(len(fp.chunk_starts)):
            yield (
                source.repo, source.path, source.license, source.url,
                int(fp.chunk_starts[i]), int(fp.chunk_ends[i]),
                raw[i].astype("<u4").tobytes(), norm[i].astype("<u4").tobytes(),
            )  # fmt: skip


def compute_signatures(
    spark, inputs: list[str], output: str, params: FingerprintParams | None = None, max_bytes: int = 1_000_000
) -> int:
    """Read Stack parquet shards, write chunk signatures to ``output`` (parquet); returns the row count."""
    from pyspark.sql.types import BinaryType, IntegerType, StringType, StructField, StructType

    frame = spark.read.parquet(*inputs)
    missing = [c for c in STACK_COLUMNS if c not in frame.columns]
    if missing:
        raise AttributionError(
            f"the input lacks the columns {', '.join(missing)}; The Stack's schema needs {', '.join(STACK_COLUMNS)}."
        )
    columns = list(STACK_COLUMNS) + [c for c in ("max_stars_repo_head_hexsha",) if c in frame.columns]
    settings = asdict(params or FingerprintParams())
    schema = StructType(
        [StructField(name, StringType()) for name in OUTPUT_COLUMNS[:4]]
        + [StructField(name, IntegerType()) for name in OUTPUT_COLUMNS[4:6]]
        + [StructField(name, BinaryType()) for name in OUTPUT_COLUMNS[6:]]
    )
    rows = frame.select(*columns).rdd.mapPartitions(
        lambda part: chunk_rows((row.asDict() for row in part), settings, max_bytes)
    )
    result = spark.createDataFrame(rows, schema)
    result.write.mode("overwrite").parquet(output)
    return spark.read.parquet(output).count()


def main(argv: list[str] | None = None) -> int:
    """Command line of the job."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("inputs", nargs="+", help="Stack-schema parquet files or folders")
    parser.add_argument("--out", required=True, help="output folder (parquet)")
    parser.add_argument(
        "--master", default=None, help="Spark master, e.g. local[*] (default: spark-submit's)"
    )
    parser.add_argument("--max-bytes", type=int, default=1_000_000, help="skip larger files")
    args = parser.parse_args(argv)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("stackcoder-signatures")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    try:
        count = compute_signatures(spark, args.inputs, args.out, max_bytes=args.max_bytes)
    finally:
        spark.stop()
    print(f"wrote {count} chunk signatures to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
