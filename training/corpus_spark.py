"""The corpus stage on PySpark (local mode here, a cluster for Stack-scale inputs).

The same per-file functions as :mod:`training.corpus` run inside Spark tasks: the license /
opt-out / quality / decontamination screen, the MinHash signature, PII redaction and the split.
Near-dedup uses LSH banding with datasketch's (bands, rows) for the threshold: files sharing a
band bucket are linked, so the links equal those of :class:`datasketch.MinHashLSH`; clusters
and the kept file per cluster are resolved on the driver by the same rule as the local job.
Parquet and jsonl sources are read by Spark itself; folders are ingested on the driver.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from training.corpus import CARD_JSON, CorpusConfig, CorpusWriter, Screen, StageCounts
from training.dedup import band_keys, cluster_keep, lsh_bands, signature
from training.errors import CorpusError

__all__ = ["build_corpus_spark"]


def _screen_partition(cfg: CorpusConfig):
    def run(rows):
        screen = Screen(cfg)
        for (repo, path, license, content), idx in rows:
            yield idx, repo, path, license, content, screen.drop_reason(repo, path, license, content)

    return run


def _bands_partition(cfg: CorpusConfig, bands: int, rows_per_band: int):
    def run(rows):
        for idx, _repo, _path, _license, content in rows:
            for key in band_keys(signature(content, cfg.dedup), bands, rows_per_band):
                yield key, idx

    return run


def _redact_partition(enabled: bool):
    def run(rows):
        from training.pii import redact

        for idx, repo, path, license, content in rows:
            counts: dict[str, int] = {}
            if enabled:
                red = redact(content)
                content, counts = red.text, dict(red.counts)
            yield idx, repo, path, license, content, counts

    return run


def _ingest(spark, sources: list[str], cfg: CorpusConfig, skip):
    """An RDD of (repo, path, license, content) from every SOURCE."""
    from attribution.sources import iter_source_files

    sc = spark.sparkContext
    rdds = []
    driver_sources = []
    for source in sources:
        name = source.lower()
        if name.endswith(".parquet") or name.endswith((".jsonl", ".jsonl.gz")):
            df = spark.read.parquet(source) if name.endswith(".parquet") else spark.read.json(source)
            cols = ["content", "max_stars_repo_name", "max_stars_repo_path", "max_stars_repo_licenses"]
            missing = [c for c in cols if c not in df.columns]
            if missing:
                raise CorpusError(f"{source} lacks the columns {', '.join(missing)}; use The Stack's schema.")
            rdds.append(
                df.select(*cols).rdd.map(
                    lambda r: (r[1], r[2], " AND ".join(r[3]) if r[3] else "unknown", r[0])
                )
            )
        else:
            driver_sources.append(source)
    if driver_sources:
        files = [
            (f.repo, f.path, f.license, f.content)
            for f in iter_source_files(
                driver_sources, max_bytes=cfg.max_bytes, extensions=cfg.extensions, stats=skip
            )
        ]
        rdds.append(sc.parallelize(files, max(2, len(files) // 2000)))
    if not rdds:
        raise CorpusError("no SOURCE given; pass folders of source trees or The Stack's jsonl/parquet files.")
    return rdds[0] if len(rdds) == 1 else sc.union(rdds)


def build_corpus_spark(
    sources: list[str],
    out: str | Path,
    cfg: CorpusConfig | None = None,
    *,
    force: bool = False,
    master: str = "local[2]",
) -> dict:
    """Run the corpus pipeline with PySpark; writes the same output and data card as the local job."""
    from pyspark.sql import SparkSession

    from attribution.sources import SkipStats

    cfg = cfg or CorpusConfig()
    out = Path(out)
    if (out / CARD_JSON).is_file() and not force:
        return json.loads((out / CARD_JSON).read_text())
    started = time.time()
    # Workers must run this interpreter (the one with our packages), not the first python3 on PATH.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master(master)
        .appName("stackcoder-corpus")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "2g")
        # Workers run this interpreter, so they import the same packages as the driver.
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .getOrCreate()
    )
    try:
        skip = SkipStats()
        screened = (
            _ingest(spark, sources, cfg, skip).zipWithIndex().mapPartitions(_screen_partition(cfg)).cache()
        )
        ingested = screened.count()
        if ingested == 0:
            raise CorpusError(
                "the sources hold no usable files; pass folders with source files or Stack-schema files."
            )
        dropped: dict[str, Counter[str]] = {
            s: Counter() for s in ("license", "opt_out", "quality", "decontamination")
        }
        for (step, reason), n in (
            screened.filter(lambda r: r[5] is not None).map(lambda r: r[5]).countByValue().items()
        ):
            dropped[step][reason] += n
        kept = screened.filter(lambda r: r[5] is None).map(lambda r: r[:5]).cache()
        meta = sorted(kept.map(lambda r: (r[0], len(r[4]), r[1], r[2])).collect())
        after_screen = len(meta)
        clusters = 0
        keep_ids = {m[0] for m in meta}
        if cfg.near_dedup and meta:
            bands, rows = lsh_bands(cfg.dedup)
            buckets = kept.mapPartitions(_bands_partition(cfg, bands, rows)).groupByKey()
            edges = (
                buckets.flatMap(lambda kv: [(min(kv[1]), i) for i in kv[1] if i != min(kv[1])])
                .distinct()
                .collect()
            )
            position = {m[0]: i for i, m in enumerate(meta)}
            flags, clusters = cluster_keep(
                len(meta),
                [(position[a], position[b]) for a, b in edges],
                [m[1] for m in meta],
                [(m[2], m[3]) for m in meta],
            )
            keep_ids = {m[0] for m, flag in zip(meta, flags, strict=True) if flag}
        keep_b = spark.sparkContext.broadcast(keep_ids)
        final = kept.filter(lambda r: r[0] in keep_b.value).mapPartitions(_redact_partition(cfg.redact_pii))
        writer = CorpusWriter(out, cfg)
        for _idx, repo, path, license, content, pii in sorted(final.collect()):
            writer.write(repo, path, license, content, pii)
        for (repo, license), n in screened.map(lambda r: (r[1], r[3])).countByValue().items():
            info = writer.repos.setdefault(repo, {"license": license, "url": None, "files": 0, "kept": 0})
            info["files"] += n
    finally:
        spark.stop()
    stages = StageCounts(
        ingested, dict(skip.counts), dropped, after_screen, after_screen - len(keep_ids), clusters
    )
    return writer.finish(sources, stages, started, engine=f"pyspark {master}")
