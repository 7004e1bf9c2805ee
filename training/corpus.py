"""The corpus stage: source trees / Stack files -> a filtered, deduplicated, redacted corpus.

Pipeline (each file passes the steps in order; every drop is counted by step and reason):

1. ingestion through :mod:`attribution.sources` (binary, over-size, generated, minified skipped)
2. license: permissive licenses only (:func:`attribution.licenses.is_permissive`), unless disabled
3. opt-out: repositories or paths listed in an opt-out file are removed
4. quality: BigCode's filters (:mod:`training.quality`)
5. decontamination against HumanEval and benchmark files such as MBPP's (:mod:`training.decontam`)
6. near-dedup with MinHash LSH (:mod:`training.dedup`)
7. PII redaction (:mod:`training.pii`)
8. split by repository into ``train`` and ``heldout``; sharded ``jsonl.gz`` in The Stack's schema

The output folder holds ``train/*.jsonl.gz``, ``heldout/*.jsonl.gz``, ``data_card.json`` and
``DATA_CARD.md``. The per-file steps are plain functions shared with the Spark job
(:mod:`training.corpus_spark`).
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from training.dedup import KEEP_RULE, DedupConfig, cluster_keep, near_duplicate_edges, signature
from training.errors import CorpusError
from training.quality import QualityConfig, failed_filter

__all__ = [
    "CorpusConfig",
    "OptOut",
    "Screen",
    "build_corpus",
    "release_family",
    "split_of",
    "stack_record",
    "ShardWriter",
    "CorpusWriter",
    "StageCounts",
    "read_corpus",
]

log = logging.getLogger(__name__)
CARD_JSON = "data_card.json"
SPLITS = ("train", "heldout")


@dataclass
class CorpusConfig:
    """Options of the corpus stage."""

    extensions: tuple[str, ...] = (".py",)  # file extensions kept
    permissive_only: bool = True  # drop files whose repository license is not permissive
    opt_out: str | None = None  # file listing opted-out repositories / path globs, one per line
    quality: QualityConfig = field(default_factory=QualityConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    near_dedup: bool = True  # remove near-duplicates
    redact_pii: bool = True  # redact e-mails, IPs, keys and passwords
    decontaminate: tuple[str, ...] = ("humaneval",)  # benchmarks whose problems are removed
    decontaminate_files: tuple[str, ...] = ()  # benchmark jsonl files (e.g. MBPP's) removed as well
    heldout_repos: tuple[str, ...] = ()  # repositories held out (name or glob); empty: by fraction
    heldout_fraction: float = 0.03  # share of repositories held out when none are named
    shard_files: int = 5000  # files per output shard
    max_bytes: int = 1_000_000  # files larger than this are skipped at ingestion


class OptOut:
    """Opted-out repositories and paths: lines ``repo`` or ``repo/path-glob`` (``#`` comments)."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = [p.strip() for p in patterns if p.strip() and not p.strip().startswith("#")]

    @classmethod
    def from_file(cls, path: str | Path | None) -> OptOut:
        """Read an opt-out list; None gives an empty one."""
        if path is None:
            return cls()
        path = Path(path)
        if not path.is_file():
            raise CorpusError(
                f"opt-out list {path} does not exist; pass a text file with one repository or path per line."
            )
        return cls(path.read_text(encoding="utf-8").splitlines())

    def excludes(self, repo: str, path: str) -> bool:
        """Whether the file is opted out."""
        full = f"{repo}/{path}"
        return any(
            p == repo or fnmatch.fnmatchcase(full, p) or fnmatch.fnmatchcase(repo, p) for p in self.patterns
        )


class Screen:
    """The per-file steps before dedup (license, opt-out, quality, decontamination)."""

    def __init__(self, cfg: CorpusConfig) -> None:
        from attribution.licenses import is_permissive
        from training.decontam import Decontaminator

        self.cfg = cfg
        self.is_permissive = is_permissive
        self.opt_out = OptOut.from_file(cfg.opt_out)
        self.decontam = (
            Decontaminator.for_benchmarks(cfg.decontaminate, cfg.decontaminate_files)
            if cfg.decontaminate or cfg.decontaminate_files
            else None
        )

    def drop_reason(self, repo: str, path: str, license: str, content: str) -> tuple[str, str] | None:
        """(step, reason) the file is dropped for, or None to keep it."""
        if self.cfg.permissive_only and not self.is_permissive(license):
            return "license", license or "unknown"
        if self.opt_out.excludes(repo, path):
            return "opt_out", "listed"
        failed = failed_filter(content, self.cfg.quality)
        if failed:
            return "quality", failed
        if self.decontam is not None:
            hit = self.decontam.match(content)
            if hit:
                return "decontamination", hit.split(":")[0].split("/")[0]
        return None


_RELEASE = re.compile(r"-v?\d[\w.+!]*$")


def release_family(repo: str) -> str:
    """A repository's name without its release: ``paramiko_expect-0.3.5`` -> ``paramiko-expect``."""
    return _RELEASE.sub("", repo).lower().replace("_", "-").replace(".", "-")


def split_of(repo: str, cfg: CorpusConfig) -> str:
    """``heldout`` or ``train`` for a repository (named globs, else a stable hash fraction).

    The hash is of the name without the release, so a new release of a package stays on its side
    of the split and a model evaluated on held-out files never trained on an older copy of them.
    """
    if cfg.heldout_repos:
        return "heldout" if any(fnmatch.fnmatchcase(repo, p) for p in cfg.heldout_repos) else "train"
    digest = int.from_bytes(hashlib.sha1(release_family(repo).encode()).digest()[:8], "big")
    return "heldout" if digest / 2**64 < cfg.heldout_fraction else "train"


def stack_record(repo: str, path: str, license: str, content: str) -> dict:
    """A record in The Stack's schema."""
    return {
        "content": content,
        "max_stars_repo_name": repo,
        "max_stars_repo_path": path,
        "max_stars_repo_licenses": [license],
        "size": len(content.encode("utf-8")),
    }


class ShardWriter:
    """Writes records to ``<dir>/<prefix>-NNNNN.jsonl.gz`` shards of a fixed number of files."""

    def __init__(self, directory: Path, prefix: str, per_shard: int) -> None:
        self.directory, self.prefix, self.per_shard = directory, prefix, per_shard
        self.directory.mkdir(parents=True, exist_ok=True)
        self.shard, self.in_shard, self.total = 0, 0, 0
        self._fh: gzip.GzipFile | None = None
        self.paths: list[str] = []

    def write(self, record: dict) -> None:
        """Append one record, opening a new shard when the current one is full."""
        if self._fh is None or self.in_shard >= self.per_shard:
            self.close()
            path = self.directory / f"{self.prefix}-{self.shard:05d}.jsonl.gz"
            self._fh = gzip.open(path, "wt", encoding="utf-8", compresslevel=6)  # type: ignore[assignment]  # noqa: SIM115
            self.paths.append(path.name)
            self.shard += 1
            self.in_shard = 0
        assert self._fh is not None
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")  # type: ignore[arg-type]
        self.in_shard += 1
        self.total += 1

    def close(self) -> None:
        """Close the current shard."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read_corpus(directory: str | Path, split: str = "train") -> Iterator[dict]:
    """Records of one split of a corpus folder written by :func:`build_corpus`."""
    directory = Path(directory)
    shards = sorted((directory / split).glob("*.jsonl.gz"))
    if not shards:
        raise CorpusError(
            f"{directory / split} holds no jsonl.gz shards; build it with `stackcoder train corpus`."
        )
    for shard in shards:
        with gzip.open(shard, "rt", encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)


def build_corpus(
    sources: list[str],
    out: str | Path,
    cfg: CorpusConfig | None = None,
    *,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Run the corpus pipeline from SOURCE paths into ``out``; returns the data card.

    A finished output (its data card present) is left as it is unless ``force`` is set.
    """
    from attribution.errors import AttributionError
    from attribution.sources import SkipStats, iter_source_files

    cfg = cfg or CorpusConfig()
    out = Path(out)
    if (out / CARD_JSON).is_file() and not force:
        log.info("corpus %s already built; pass --force to rebuild it", out)
        return json.loads((out / CARD_JSON).read_text())
    if not sources:
        raise CorpusError("no SOURCE given; pass folders of source trees or The Stack's jsonl/parquet files.")
    started = time.time()
    screen = Screen(cfg)
    skip = SkipStats()
    dropped: dict[str, Counter[str]] = {
        step: Counter() for step in ("license", "opt_out", "quality", "decontamination")
    }
    repos: dict[str, dict] = {}
    kept: list[tuple[str, str, str, str]] = []
    ingested = 0
    try:
        files = iter_source_files(sources, max_bytes=cfg.max_bytes, extensions=cfg.extensions, stats=skip)
        for sf in tqdm(files, desc="screen", unit="file", disable=not progress):
            ingested += 1
            info = repos.setdefault(sf.repo, {"license": sf.license, "url": sf.url, "files": 0, "kept": 0})
            info["files"] += 1
            reason = screen.drop_reason(sf.repo, sf.path, sf.license, sf.content)
            if reason:
                dropped[reason[0]][reason[1]] += 1
                continue
            kept.append((sf.repo, sf.path, sf.license, sf.content))
    except AttributionError as exc:
        raise CorpusError(str(exc)) from exc
    if ingested == 0:
        raise CorpusError(
            f"the sources hold no usable {'/'.join(cfg.extensions)} files ({skip.summary()}); "
            "pass folders with source files or Stack-schema files."
        )
    after_screen = len(kept)
    clusters = 0
    if cfg.near_dedup and kept:
        sigs = [
            signature(c, cfg.dedup)
            for _, _, _, c in tqdm(kept, desc="minhash", unit="file", disable=not progress)
        ]
        edges = near_duplicate_edges(sigs, cfg.dedup)
        keep, clusters = cluster_keep(
            len(kept), edges, [len(c) for *_, c in kept], [(r, p) for r, p, *_ in kept]
        )
        kept = [k for k, flag in zip(kept, keep, strict=True) if flag]
    if cfg.redact_pii:
        from training.pii import redact
    writer = CorpusWriter(out, cfg, repos)
    for repo, path, license, content in tqdm(kept, desc="redact+write", unit="file", disable=not progress):
        pii: dict[str, int] = {}
        if cfg.redact_pii:
            red = redact(content)
            content, pii = red.text, dict(red.counts)
        writer.write(repo, path, license, content, pii)
    stages = StageCounts(
        ingested, dict(skip.counts), dropped, after_screen, after_screen - len(kept), clusters
    )
    return writer.finish(sources, stages, started)


@dataclass
class StageCounts:
    """Files counted by the stages before writing (the data card's ``counts``)."""

    ingested: int
    skipped_at_ingestion: dict[str, int]  # reason -> files
    dropped: dict[str, Counter[str]]  # step -> reason -> files
    after_screen: int
    near_duplicates_removed: int
    near_duplicate_clusters: int


class CorpusWriter:
    """The last stage of the local and the Spark job: kept files into the ``train`` and
    ``heldout`` shards, then the data card (JSON and Markdown) with the counts of every stage."""

    def __init__(self, out: Path, cfg: CorpusConfig, repos: dict[str, dict] | None = None) -> None:
        self.out, self.cfg = out, cfg
        # repository -> license, url, files (seen), kept, split
        self.repos: dict[str, dict] = {} if repos is None else repos
        self.writers = {s: ShardWriter(out / s, s, cfg.shard_files) for s in SPLITS}
        self.split_counts: Counter[str] = Counter()
        self.split_bytes: Counter[str] = Counter()
        self.pii: Counter[str] = Counter()

    def write(self, repo: str, path: str, license: str, content: str, pii: dict[str, int]) -> None:
        """Write one kept (already redacted) file, with the redactions made in it, to its split."""
        split = split_of(repo, self.cfg)
        self.writers[split].write(stack_record(repo, path, license, content))
        self.split_counts[split] += 1
        self.split_bytes[split] += len(content.encode("utf-8"))
        self.pii.update(pii)
        info = self.repos.setdefault(repo, {"license": license, "url": None, "files": 0, "kept": 0})
        info["kept"] += 1
        info["split"] = split

    def finish(
        self, sources: list[str], stages: StageCounts, started: float, engine: str | None = None
    ) -> dict:
        """Close the shards and write the data card; returns it."""
        for w in self.writers.values():
            w.close()
        card: dict = {"sources": [str(s) for s in sources]}
        if engine:
            card["engine"] = engine
        card |= {
            "config": _jsonable(asdict(self.cfg)),
            "dedup_keep_rule": KEEP_RULE,
            "counts": {
                "ingested": stages.ingested,
                "skipped_at_ingestion": dict(stages.skipped_at_ingestion),
                "dropped": {k: dict(v) for k, v in stages.dropped.items()},
                "after_screen": stages.after_screen,
                "near_duplicates_removed": stages.near_duplicates_removed,
                "near_duplicate_clusters": stages.near_duplicate_clusters,
                "pii_redactions": dict(self.pii),
                "kept": sum(self.split_counts.values()),
                "splits": dict(self.split_counts),
                "split_bytes": dict(self.split_bytes),
            },
            "licenses": dict(Counter(info["license"] for info in self.repos.values() if info["kept"])),
            "repositories": self.repos,
            "shards": {s: w.paths for s, w in self.writers.items()},
            "seconds": round(time.time() - started, 1),
        }
        (self.out / CARD_JSON).write_text(json.dumps(card, indent=1), encoding="utf-8")
        (self.out / "DATA_CARD.md").write_text(data_card_markdown(card), encoding="utf-8")
        return card


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def data_card_markdown(card: dict) -> str:
    """The data card as Markdown: counts per stage, licenses, repositories."""
    c = card["counts"]
    lines = [
        "# Data card",
        "",
        f"Sources: {', '.join(card['sources'])}",
        "",
        "| stage | files |",
        "|---|---:|",
        f"| ingested (after skipping binary/generated/minified/over-size) | {c['ingested']} |",
    ]
    for reason, n in sorted(c["skipped_at_ingestion"].items()):
        lines.append(f"| skipped at ingestion: {reason} | {n} |")
    for step, reasons in c["dropped"].items():
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            lines.append(f"| dropped by {step}: {reason} | {n} |")
    lines += [
        f"| after license/opt-out/quality/decontamination | {c['after_screen']} |",
        f"| near-duplicates removed ({c['near_duplicate_clusters']} clusters) | {c['near_duplicates_removed']} |",
        f"| kept | {c['kept']} |",
    ]
    for split, n in c["splits"].items():
        lines.append(f"| split {split} | {n} files, {c['split_bytes'].get(split, 0) / 1e6:.1f} MB |")
    lines += [
        "",
        f"Near-dedup rule: {card['dedup_keep_rule']}.",
        "",
        f"PII redactions: {', '.join(f'{k} {v}' for k, v in sorted(c['pii_redactions'].items())) or 'none'}.",
        "",
        "## Licenses of kept repositories",
        "",
        "| license | repositories |",
        "|---|---:|",
    ]
    for lic, n in sorted(card["licenses"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {lic} | {n} |")
    lines += [
        "",
        "## Repositories",
        "",
        "| repository | license | split | files kept / seen |",
        "|---|---|---|---:|",
    ]
    for name, info in sorted(card["repositories"].items()):
        lines.append(
            f"| {name} | {info['license']} | {info.get('split', '-')} | {info['kept']} / {info['files']} |"
        )
    return "\n".join(lines) + "\n"
