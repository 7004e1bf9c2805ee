"""Sub-commands of `stackcoder` provided by `attribution`: `stackcoder index build|query|scan|publish-lsh`."""

from __future__ import annotations

import argparse
import json
import sys

_BUILD_HELP = """\
Index source code so that generated code can be traced back to it.

SOURCE is a folder (a repository if it has LICENSE/COPYING/pyproject.toml/setup.py/.git/
package.json at its top, otherwise each top-level sub-folder is one repository), a .jsonl or
.jsonl.gz file, or a .parquet file in The Stack's schema (content, max_stars_repo_name,
max_stars_repo_path, max_stars_repo_licenses). Binary, generated, minified and over-size files
are skipped and counted. If --out already holds an index, the SOURCEs are added to it as a new
segment: files already indexed are skipped and nothing is rebuilt."""

_QUERY_HELP = """\
Check code against an index and print the verdict (copied / similar / original) with the
matching repositories, paths, licenses and lines, side by side; --json prints the report as
one JSON object: {"verdict": ..., "matches": [{"repo", "path", "license", "url",
"source_start_line", "source_end_line", "query_start_line", "query_end_line", "kind",
"score"}]}."""

_SCAN_HELP = """\
Check every file of the repository at PATH against an index and report what matches: findings
grouped by source repository and license, each with its license fit in PATH's license (from its
LICENSE file, pyproject.toml or package.json), the scanned and the source lines side by side
(--html), and totals. Matches of PATH's own code (its git remotes, the entries of
PATH/.stackcoder/mine.json and --mine) are left out. Only copies are reported unless
--include-similar is given. Exit status 0 whether or not something matched."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's sub-commands to the `stackcoder` parser."""
    index = subparsers.add_parser(
        "index",
        help="build and query the provenance index (which corpus code does this resemble?)",
        description="Build and query the provenance index.",
    )
    commands = index.add_subparsers(dest="index_command", metavar="ACTION")
    index.set_defaults(handler=lambda args: (index.print_help(), 2)[1])

    build = commands.add_parser(
        "build",
        help="index SOURCE folders / Stack files",
        description=_BUILD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument("sources", nargs="+", metavar="SOURCE", help="folder, .jsonl, .jsonl.gz or .parquet")
    build.add_argument("--out", required=True, metavar="INDEX_DIR", help="index folder to create or extend")
    build.add_argument(
        "--ext",
        action="append",
        metavar="EXT",
        help="index only files with this extension (repeatable, e.g. --ext py --ext pyi); default: all text files",
    )
    build.add_argument(
        "--max-bytes", type=int, default=1_000_000, help="skip files larger than this (default 1000000)"
    )
    build.add_argument(
        "--workers", type=int, default=0, help="fingerprinting processes (default: one per CPU core)"
    )
    build.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    build.set_defaults(handler=_build)

    query = commands.add_parser(
        "query",
        help="check code against an index",
        description=_QUERY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    query.add_argument("file", metavar="FILE|-", help="file holding the code to check, or - for stdin")
    query.add_argument(
        "--index", required=True, metavar="INDEX_DIR", help="index folder built by `index build`"
    )
    query.add_argument("--json", action="store_true", help="print the report as JSON")
    query.add_argument(
        "--redis", metavar="HOST:PORT", help="find near-duplicate candidates in this Redis LSH"
    )
    query.set_defaults(handler=_query)

    scan = commands.add_parser(
        "scan",
        help="check every file of a repository against an index and write a report",
        description=_SCAN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument("path", metavar="PATH", help="root folder of the repository to check")
    scan.add_argument(
        "--index", required=True, metavar="INDEX_DIR", help="index folder built by `index build`"
    )
    scan.add_argument("--html", metavar="OUT", help="also write the report as an HTML page to OUT")
    scan.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    scan.add_argument(
        "--ext",
        action="append",
        metavar="EXT",
        help="check only files with this extension (repeatable); default: all text files",
    )
    scan.add_argument(
        "--max-bytes", type=int, default=1_000_000, help="skip files larger than this (default 1000000)"
    )
    scan.add_argument("--workers", type=int, default=0, help="query processes (default: one per CPU core)")
    scan.add_argument(
        "--include-similar",
        action="store_true",
        help="also report BM25 and low-similarity hits, not only copies",
    )
    scan.add_argument(
        "--mine",
        action="append",
        default=[],
        metavar="REPO[:PATH]",
        help="count matches of this repository (or path glob in it) as your own code (repeatable)",
    )
    scan.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    scan.set_defaults(handler=_scan)

    publish = commands.add_parser(
        "publish-lsh",
        help="copy an index's LSH signatures into Redis (shared by several machines)",
        description="Insert the MinHash signatures of every chunk of an index into datasketch's "
        "Redis-backed MinHashLSH, so that queries with --redis find candidates there.",
    )
    publish.add_argument(
        "--index", required=True, metavar="INDEX_DIR", help="index folder built by `index build`"
    )
    publish.add_argument("--redis", required=True, metavar="HOST:PORT", help="Redis server address")
    publish.add_argument(
        "--basename", default="stackcoder", help="prefix of the Redis keys (default stackcoder)"
    )
    publish.set_defaults(handler=_publish)

    signatures = commands.add_parser(
        "publish-signatures",
        help="copy the chunk signatures of the PySpark job into Redis",
        description="Insert the chunk signatures written by `python -m attribution.spark_signatures` "
        "(parquet) into datasketch's Redis-backed MinHashLSH; queries of any index opened with the "
        "same --redis then report those chunks as near matches, with repository, path, license and "
        "lines, scored by MinHash agreement.",
    )
    signatures.add_argument("signatures", metavar="SIGNATURES_DIR", help="the signature job's --out folder")
    signatures.add_argument("--redis", required=True, metavar="HOST:PORT", help="Redis server address")
    signatures.add_argument(
        "--basename", default="stackcoder", help="prefix of the Redis keys (default stackcoder)"
    )
    signatures.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    signatures.set_defaults(handler=_publish_signatures)


def _redis_config(address: str, basename: str = "stackcoder") -> dict:
    from attribution.errors import StorageConfigError

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise StorageConfigError(f"--redis expects HOST:PORT, got {address!r}; e.g. --redis 127.0.0.1:6379.")
    return {"type": "redis", "redis": {"host": host, "port": int(port)}, "basename": basename.encode()}


def _build(args: argparse.Namespace) -> int:
    from attribution.build import BuildConfig, build_index

    config = BuildConfig(
        max_bytes=args.max_bytes, extensions=args.ext, workers=args.workers, progress=not args.no_progress
    )
    result = build_index(args.sources, args.out, config)
    print(
        f"indexed {result.files} files ({result.lines} lines, {result.chunks} chunks) into {result.index} "
        f"in {result.seconds:.1f} s ({result.files_per_second:.0f} files/s); {result.skipped.summary()}"
    )
    return 0


def _read_query(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    with open(name, "rb") as fh:
        return fh.read()


def _query(args: argparse.Namespace) -> int:
    from attribution.index import Index

    lsh = _redis_config(args.redis) if args.redis else None
    with Index.open(args.index, lsh=lsh) as index:
        report = index.query(_read_query(args.file))
        if args.json:
            print(json.dumps(report.to_dict(), indent=2))
        else:
            print(report.to_terminal())
    return 0


def _scan(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from attribution.scan import ScanConfig, scan_repository
    from attribution.scan_report import to_html, to_terminal

    config = ScanConfig(
        workers=args.workers or os.cpu_count() or 1,
        extensions=tuple(args.ext) if args.ext else None,
        max_bytes=args.max_bytes,
        include_similar=args.include_similar,
        progress=not args.no_progress,
        mine=tuple(args.mine),
    )
    result = scan_repository(args.path, args.index, config)
    if args.html:
        Path(args.html).write_text(to_html(result), encoding="utf-8")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(to_terminal(result))
        if args.html:
            print(f"HTML report written to {args.html}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from attribution.index import Index

    with Index.open(args.index) as index:
        count = index.publish_lsh(_redis_config(args.redis, args.basename))
    print(f"published {count} chunk signatures to redis at {args.redis}")
    return 0


def _publish_signatures(args: argparse.Namespace) -> int:
    from attribution.remote import publish_signatures

    count = publish_signatures(
        args.signatures, _redis_config(args.redis, args.basename), progress=not args.no_progress
    )
    print(f"published {count} remote chunk signatures to redis at {args.redis}")
    return 0
