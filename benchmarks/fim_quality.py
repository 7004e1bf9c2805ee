"""Single-line infilling exact match through the product against the raw model, same holes, same run.

Holes: one masked line of each HumanEval canonical solution (``training.evaluate.humaneval_fim_cases``)
and, with ``--heldout DIR``, lines of functions in the Python files under DIR. Each hole is completed

* raw: the model's own FIM tokens in PSM order, greedy, cut at the first newline: no context, no
  token healing, no post-processing (what a script calling llama.cpp would do);
* product: ``CodeModel.complete`` as the language server calls it (the model's FIM format and
  order, prompt budget, token healing, single-line mode, post-processing), for each ``--order``;

and compared with the masked line after whitespace normalisation. Prints a table (exact match,
ms per hole) and, with ``--json``, writes the per-hole results.

``--model`` repeats: each model in turn on the same holes (a base and its adapter, one table).
``--workspace-context`` adds, for held-out holes, the product with the snippets the language server
would send: the hole's repository written to a folder, indexed by ``WorkspaceIndex`` (BM25, what a
keystroke gets before the query's embedding is ready), queried with the lines above the cursor.

    .venv/bin/python benchmarks/fim_quality.py --model qwen2.5-coder-1.5b-instruct --n 60
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def raw_completion(model, prefix: str, suffix: str, max_new_tokens: int) -> str:
    """The model's FIM prompt in PSM order, greedy, first line only: no product logic."""
    fmt = model.fim
    prompt = f"{fmt.prefix}{prefix}{fmt.suffix}{suffix}{fmt.middle}"
    text = "".join(model.stream(prompt, max_new_tokens=max_new_tokens, stop=("\n",), heal=False))
    return text.split("\n")[0]


def within_budget(model, prefix: str, suffix: str, budget: int | None) -> tuple[str, str]:
    """The raw path's window: the last three quarters of ``budget`` tokens of the prefix and the
    first quarter of the suffix, cut at token boundaries (None: the whole file)."""
    if budget is None:
        return prefix, suffix
    tokenizer = model.tokenizer
    before, after = tokenizer.encode(prefix), tokenizer.encode(suffix)
    keep_after = min(len(after), budget // 4)
    keep_before = min(len(before), budget - keep_after)
    return tokenizer.decode(before[len(before) - keep_before :]), tokenizer.decode(after[:keep_after])


def heldout_files(folder: Path, limit: int) -> list[tuple[str, str]]:
    """(name, text) of Python files: the held-out split of a corpus from `stackcoder train corpus`
    (its repositories never trained on; a seeded sample of ``limit`` files across all of them), or
    any folder of .py files."""
    if (folder / "heldout").is_dir():
        from training.corpus import read_corpus

        records = [r for r in read_corpus(folder, "heldout") if r["max_stars_repo_path"].endswith(".py")]
        if len(records) > limit:
            records = random.Random(0).sample(records, limit)
        return [(f"{r['max_stars_repo_name']}/{r['max_stars_repo_path']}", r["content"]) for r in records]
    files = []
    for path in sorted(folder.rglob("*.py"))[:limit]:
        try:
            files.append((str(path.relative_to(folder)), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return files


def place_rested_window(model, document: str, cursor: int, seed: str) -> None:
    """Place the window of a cursor that rested up to a quarter window before or after ``cursor``
    (the cursor's prefix in the window is then a quarter to three quarters of it)."""
    from engine.types import CompletionRequest
    from engine.windows import WINDOW_CHARS_PER_TOKEN

    quarter = model.max_prompt_tokens * WINDOW_CHARS_PER_TOKEN // 4
    rested = min(max(0, cursor + random.Random(seed).randint(-quarter, quarter)), len(document))
    model.forget_windows()
    model.place_window(CompletionRequest("hole", document[:rested], document[rested:]))


class Workspaces:
    """The held-out repositories as folders on disk, each indexed as the language server indexes a
    workspace; ``context(case)`` gives the path, repository name and snippets of a hole's request."""

    def __init__(self, corpus: Path) -> None:
        import tempfile

        from training.corpus import read_corpus

        self.root = Path(tempfile.mkdtemp(prefix="fim-workspaces-"))
        for record in read_corpus(corpus, "heldout"):
            target = self.root / record["max_stars_repo_name"] / record["max_stars_repo_path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(record["content"], encoding="utf-8")
        self.indexes: dict = {}

    def _index(self, repo: str):
        from lsp_server.workspace_index import WorkspaceIndex

        if repo not in self.indexes:
            index = WorkspaceIndex([self.root / repo])
            index.start(watch=False)
            index.wait_ready()
            self.indexes[repo] = index
        return self.indexes[repo]

    def context(self, case) -> dict:
        """``complete`` keywords for a held-out hole: its path, repository and workspace snippets."""
        from lsp_server.completion import SNIPPET_LIMIT, as_snippets, context_query

        name = case.source.rsplit(":", 1)[0]
        repo, path = name.split("/", 1)
        index = self._index(repo)
        query = context_query(case.prefix)
        hits = index.search(query, exclude_path=str(self.root / name), limit=SNIPPET_LIMIT, mode="bm25")
        snippets = as_snippets(index, hits) if query.strip() else []
        return {"snippets": snippets, "repo_name": repo, "path": path}

    def close(self) -> None:
        import shutil

        for index in self.indexes.values():
            index.close()
        shutil.rmtree(self.root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        help="catalog name or path, repeatable: each model in turn on the same holes (default: the default model)",
    )
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--n", type=int, default=60, help="holes per set (default 60)")
    parser.add_argument(
        "--heldout",
        type=Path,
        default=None,
        help="a corpus folder (its heldout/ split) or a folder of Python files, for a second set",
    )
    parser.add_argument(
        "--order",
        action="append",
        choices=("psm", "spm", "window"),
        help="product FIM orders to run (window: the window prompt of a cursor that rested up to a "
        "quarter window away, engine.windows)",
    )
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument(
        "--near-suffix-tokens",
        type=int,
        default=None,
        help="suffix tokens of the window prompt (default: engine.windows.NEAR_SUFFIX_TOKENS)",
    )
    parser.add_argument(
        "--max-prompt-tokens",
        type=int,
        default=None,
        help="prompt budget of the product and of the raw path's window (default: the product's; raw: whole file)",
    )
    parser.add_argument("--sets", default="humaneval,heldout", help="hole sets to run (default: both)")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw model (product rows only)")
    parser.add_argument(
        "--workspace-context",
        action="store_true",
        help="held-out holes also through the product with snippets from the rest of their repository",
    )
    parser.add_argument("--json", type=Path, default=None, help="write per-hole results here")
    args = parser.parse_args()

    from engine import default_model, load_model
    from engine.cpu import instruction_sets
    from training.evaluate import FimCase, heldout_fim_cases, humaneval_fim_cases

    wanted = set(args.sets.split(","))
    sets: dict[str, list[FimCase]] = {}
    if "humaneval" in wanted:
        sets["humaneval"] = humaneval_fim_cases()[: args.n]
    if args.heldout and "heldout" in wanted:
        sets["heldout"] = heldout_fim_cases(heldout_files(args.heldout, 400), args.n)
    orders = args.order or ["psm", "spm"]
    workspaces = Workspaces(args.heldout) if args.workspace_context and "heldout" in sets else None

    rows, details, settings = [], [], ""
    for name in args.model or [default_model().reference]:
        model = load_model(name, backend=args.backend)
        if args.max_prompt_tokens:
            model.max_prompt_tokens = args.max_prompt_tokens
        if args.near_suffix_tokens:
            model.near_suffix_tokens = args.near_suffix_tokens
        print(f"{model.name} ({model.backend_name})", file=sys.stderr, flush=True)
        model_rows, model_details = evaluate(model, sets, orders, args, workspaces)
        rows += [(model.name, *row) for row in model_rows]
        details += [{"model": model.name, **hole} for hole in model_details]
        settings = f"prompt budget {model.max_prompt_tokens} tokens" + (
            " (raw too)" if args.max_prompt_tokens else ""
        )
        if "window" in orders:
            settings += f", window prompts with {model.near_suffix_tokens} suffix tokens"
        model.close()

    print(f"\n{settings}; CPU instruction sets: {instruction_sets()}")
    width = max(len(row[0]) for row in rows)
    print(f"{'model':{width}} {'holes':10} {'path':16} {'exact match':>12} {'ms/hole':>9}")
    for model_name, set_name, label, hits, n, ms in rows:
        print(f"{model_name:{width}} {set_name:10} {label:16} {hits:>4}/{n:<4} {hits / n:5.2f} {ms:9.0f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "holes": details}, indent=1))
    if workspaces is not None:
        workspaces.close()
    return 0


def evaluate(
    model, sets: dict, orders: list[str], args: argparse.Namespace, workspaces: Workspaces | None = None
) -> tuple[list[tuple], list[dict]]:
    """Exact match of one model on every hole set, raw and per product order (and with workspace
    snippets for held-out holes): table rows and holes."""
    norm = " ".join
    rows, details = [], []
    for set_name, cases in sets.items():
        configs = [] if args.no_raw else [("raw", None, False)]
        configs += [(f"product ({o})", o, False) for o in orders]
        if workspaces is not None and set_name == "heldout":
            configs += [(f"product ({o}) + ws", o, True) for o in orders if o != "window"]
        for label, order, with_context in configs:
            # snippets are looked up before the clock starts: indexing a repository is not a completion
            contexts = [workspaces.context(c) if with_context and workspaces else {} for c in cases]
            hits, started = 0, time.perf_counter()
            for case, context in zip(cases, contexts, strict=True):
                if order is None:
                    prefix, suffix = within_budget(model, case.prefix, case.suffix, args.max_prompt_tokens)
                    got = raw_completion(model, prefix, suffix, args.max_new_tokens)
                else:
                    model.fim_order = order
                    if order == "window":
                        place_rested_window(model, case.prefix + case.suffix, len(case.prefix), case.source)
                    got = model.complete(
                        case.prefix,
                        case.suffix,
                        mode="single",
                        use_cache=False,
                        max_new_tokens=args.max_new_tokens,
                        **context,
                    ).text.split("\n")[0]
                ok = norm(got.split()) == norm(case.target.split())
                hits += ok
                details.append(
                    {
                        "set": set_name,
                        "config": label,
                        "hole": case.source,
                        "target": case.target,
                        "got": got,
                        "match": ok,
                    }
                )
            elapsed = time.perf_counter() - started
            rows.append((set_name, label, hits, len(cases), 1000 * elapsed / len(cases)))
            print(f"  {set_name:9} {label:15} {hits}/{len(cases)}", file=sys.stderr, flush=True)
    return rows, details


if __name__ == "__main__":
    sys.exit(main())
