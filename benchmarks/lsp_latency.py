"""Server-side latency of `textDocument/inlineCompletion` while a typing session is replayed.

A real client connection (pygls' LanguageClient over the server's stdio) opens a file of a real
multi-file project (a copy of an installed package, ``--project``), deletes the rest of a line at
several sites and types it back one character at a time; after every keystroke it sends
``didChange`` and asks for an inline completion, waiting for the answer and then ``--idle-ms``
before the next key (as an editor with a debounce does; the server's prefetch runs in that
pause). Five configurations run in fresh server processes:

  base         no cross-file context, no provenance check
  +context     cross-file snippets from the workspace index (BM25 + MiniLM dense vectors, RRF)
  +provenance  every completion checked against an attribution index within the request
  +both        both
  base-prefetch  base without the server's idle-time prefetch (the completion after a suggestion)

Reported per configuration: server-side p50/p95 (the server's own measurement, `stackcoder/status`),
the client's round trip p50/p95, and the number of requests. Targets on 2 cores for the embedded
model: p50 <= 60 ms, p95 <= 150 ms; provenance adds <= 10 ms at p50.

    python benchmarks/lsp_latency.py                      # the embedded default model
    python benchmarks/lsp_latency.py --model PATH         # any model folder
    python benchmarks/lsp_latency.py --tiny               # the random-weight test model (no training needed)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _workspace import REPO, copy_project, resolve_model  # benchmarks/ is on sys.path

sys.path.insert(0, str(REPO))

CONFIGS: dict[str, tuple[bool, bool, bool]] = {  # name -> (cross-file context, provenance, prefetch)
    "base": (False, False, True),
    "+context": (True, False, True),
    "+provenance": (False, True, True),
    "+both": (True, True, True),
    "base-prefetch": (False, False, False),
}


def typing_sites(root: Path, count: int, seed: int) -> list[tuple[Path, int, str]]:
    """(file, line, text to type) for lines inside function bodies of the project."""
    rng = random.Random(seed)
    files = sorted(p for p in root.rglob("*.py") if p.stat().st_size > 2000)
    sites = []
    while len(sites) < count and files:
        path = rng.choice(files)
        lines = path.read_text(encoding="utf-8").splitlines()
        candidates = [
            i
            for i, line in enumerate(lines)
            if line.startswith("        ")
            and len(line.strip()) > 20
            and not line.strip().startswith(("#", '"', "'"))
        ]
        if candidates:
            i = rng.choice(candidates)
            sites.append((path, i, lines[i]))
    return sites


def build_corpus_index(out: Path, project: str) -> Path:
    """An attribution index over a few other installed packages (the check must run, not match)."""
    import importlib.util

    from attribution import BuildConfig, build_index

    corpus = out / "corpus"
    corpus.mkdir(parents=True)
    for name in ("json", "email", "http", "logging"):
        spec = importlib.util.find_spec(name)
        if spec and spec.submodule_search_locations and name != project:
            shutil.copytree(
                next(iter(spec.submodule_search_locations)),
                corpus / name,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
    index = out / "index"
    build_index([corpus], index, BuildConfig(workers=1, progress=False))
    return index


async def run_config(
    name: str,
    model: Path,
    workspace: Path,
    sites: list[tuple[Path, int, str]],
    keystrokes: int,
    context: bool,
    index: Path | None,
    idle_ms: float = 150.0,
    prefetch: bool = True,
) -> dict[str, Any]:
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    client = LanguageClient("lsp-latency-bench", "1")

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def show_message(params: types.ShowMessageParams) -> None:
        print(f"[{name}] server says: {params.message}", file=sys.stderr, flush=True)

    await client.start_io(sys.executable, "-m", "lsp_server", env=env)
    drain = asyncio.ensure_future(_drain(client._server.stderr))  # type: ignore[union-attr]
    settings = {
        "model": {"path": str(model), "threads": 0},
        "completion": {"crossFileContext": context, "maxNewTokens": 32, "prefetch": prefetch},
        "provenance": {
            "enabled": index is not None,
            "indexPath": str(index) if index else None,
            "policy": "mark",
        },
    }
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="ws")],
            initialization_options={"stackcoder": settings},
        )
    )
    client.initialized(types.InitializedParams())
    status = await _wait_ready(client, context, index is not None)
    rtts: list[float] = []
    version = 1
    for path, line_no, line in sites:
        text_lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        indent = len(line) - len(line.lstrip())
        typed = line[indent : indent + keystrokes]
        text_lines[line_no] = line[:indent] + "\n"
        uri = path.as_uri()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=version, text="".join(text_lines)
                )
            )
        )
        col = indent
        for ch in typed:
            version += 1
            pos = types.Position(line=line_no, character=col)
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[
                        types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text=ch)
                    ],
                )
            )
            col += 1
            t = time.perf_counter()
            await client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=types.Position(line=line_no, character=col),
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Automatic
                    ),
                )
            )
            rtts.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(idle_ms / 1000)  # the editor's debounce: the server's prefetch runs here
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
    status = _plain(await client.protocol.send_request_async("stackcoder/status", {}))
    await client.shutdown_async(None)
    client.exit(None)
    await asyncio.sleep(0.2)
    await client.stop()
    drain.cancel()
    lat = status["latency_ms"]
    stages = status.get("stages_ms", {})
    return {
        "stages": {k: (v["p50"], v["p95"]) for k, v in stages.items()},
        "config": name,
        "n": lat["count"],
        "p50": lat["p50"],
        "p95": lat["p95"],
        "rtt_p50": statistics.median(rtts),
        "rtt_p95": _pct(rtts, 95),
        "model": status["model"]["name"],
    }


def _pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def _plain(value: Any) -> Any:
    from lsp_server.protocol import to_plain

    return to_plain(value)


async def _drain(stream: Any) -> None:
    while stream is not None and await stream.readline():
        pass


async def _wait_ready(client: Any, context: bool, provenance: bool, timeout: float = 600) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = _plain(await client.protocol.send_request_async("stackcoder/status", {}))
        if status["model"]["error"]:
            raise SystemExit(f"the server could not load the model: {status['model']['error']}")
        ready = status["model"]["loaded"] and (
            not provenance or status["index"]["loaded"] or status["index"]["error"]
        )
        if context:  # the workspace index and its embeddings must be complete
            ready = ready and bool(status.get("context") and status["context"]["ready"])
        if ready:
            return status
        await asyncio.sleep(0.25)
    raise SystemExit("the server did not get ready in time")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="model folder (default: the embedded default model)")
    parser.add_argument("--tiny", action="store_true", help="use the random-weight test model")
    parser.add_argument(
        "--project", default="httpx", help="installed package copied as the workspace (default httpx)"
    )
    parser.add_argument("--sites", type=int, default=6, help="lines retyped (default 6)")
    parser.add_argument("--keystrokes", type=int, default=30, help="characters typed per line (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--idle-ms",
        type=float,
        default=150.0,
        help="pause after each answer before the next keystroke (default 150, the editor's debounce)",
    )
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"subset of {','.join(CONFIGS)}")
    args = parser.parse_args(argv)
    model = resolve_model(args)
    names = [c for c in args.configs.split(",") if c]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configs {unknown}; choose from {', '.join(CONFIGS)}")
    with tempfile.TemporaryDirectory(prefix="lsp-latency-") as tmp:
        tmp_path = Path(tmp)
        workspace = copy_project(args.project, tmp_path / "ws")
        sites = typing_sites(workspace, args.sites, args.seed)
        index = (
            build_corpus_index(tmp_path / "attr", args.project) if any(CONFIGS[c][1] for c in names) else None
        )
        rows = []
        for name in names:
            context, provenance, prefetch = CONFIGS[name]
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows.append(
                asyncio.run(
                    run_config(
                        name,
                        model,
                        workspace,
                        sites,
                        args.keystrokes,
                        context,
                        index if provenance else None,
                        args.idle_ms,
                        prefetch,
                    )
                )
            )
    load = os.getloadavg()
    print(
        f"\nmodel: {rows[0]['model']} ({model}); project: {args.project}; {len(sites)} lines x {args.keystrokes} keys"
    )
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores\n")
    print(
        f"| {'config':<12} | {'n':>4} | {'server p50 ms':>13} | {'server p95 ms':>13} | {'client p50 ms':>13} | {'client p95 ms':>13} |"
    )
    print(f"|{'-' * 14}|{'-' * 6}|{'-' * 15}|{'-' * 15}|{'-' * 15}|{'-' * 15}|")
    for r in rows:
        print(
            f"| {r['config']:<12} | {r['n']:>4} | {r['p50']:>13.1f} | {r['p95']:>13.1f} | "
            f"{r['rtt_p50']:>13.1f} | {r['rtt_p95']:>13.1f} |"
        )
    print(f"\n| {'config':<12} | {'stage':<10} | {'p50 ms':>7} | {'p95 ms':>7} |  (server-side, per request)")
    print(f"|{'-' * 14}|{'-' * 12}|{'-' * 9}|{'-' * 9}|")
    for r in rows:
        for stage, (p50, p95) in r["stages"].items():
            print(f"| {r['config']:<12} | {stage:<10} | {p50:>7.1f} | {p95:>7.1f} |")
    by = {r["config"]: r for r in rows}
    stage = by.get("+provenance", {}).get("stages", {}).get("provenance")
    if stage:
        print(
            f"\nthe provenance check takes {stage[0]:.1f} ms at p50, {stage[1]:.1f} ms at p95 (target: adds <= 10 ms at p50)"
        )
    if "base" in by and "+provenance" in by:
        print(
            f"+provenance vs base, end to end at p50: {by['+provenance']['p50'] - by['base']['p50']:+.1f} ms (load noise)"
        )
    if "base" in by and "+context" in by:
        print(
            f"+context vs base, end to end at p50: {by['+context']['p50'] - by['base']['p50']:+.1f} ms (load noise)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
