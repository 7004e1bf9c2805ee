"""Typing-session benchmark: a completion after every keystroke, naive vs the engine's optimisations.

The same on every machine: the standard library's textwrap.py with the body of
``TextWrapper._wrap_chunks`` deleted; the first ``--keystrokes`` (400) characters of that body are
typed back one at a time and a completion is requested after each keystroke. Reported per
configuration: median and p95 latency per request, how many requests actually ran the model, and
what each technique costs in memory.

Configurations (each adds one technique to the previous one):
  naive        every request runs the whole prompt through the model
  +static      CTranslate2 ``static_prompt`` reuse: SPM order puts the suffix first, so typing
               only appends to the prompt and the state of everything above the cursor's line is
               cached across keystrokes
  +cache       typed-through completion cache: typing what the suggestion shows is answered
               without the model
  +prefetch    the completion service's prefetch: after each answer, the completion at the end of the
               suggestion is computed in the idle time before the next keystroke (its time is
               reported, not counted as latency)

  +prefetch (closers in prompt)
               as +prefetch, but the closing brackets and quotes the editor auto-inserts after
               the cursor stay in the prompt's suffix (``--auto-close`` sessions only: each pair
               then changes the start of the SPM prompt, and its cached state is lost)

Every request goes through the product's ``CompletionService`` (as in the language server).
With ``--auto-close`` the typing is replayed as VS Code's default editor does it: an opening
bracket (or a quote outside a string) inserts its closer after the cursor, and typing that closer
steps over it; the typing then starts after the method's docstring, where the code is.

Every keystroke is answered by each configuration in turn (one model per configuration), so a
change in machine load affects them alike and the ratios stay fair on a busy machine.

With ``--pace-ms`` the session is typed in real time instead, as a user types: a keystroke every
PACE milliseconds and a pause after each Enter (``--line-pause-ms``), every request superseding the
one before it; each configuration types the whole session in turn. Reported: how many keystrokes
had their suggestion before the next keystroke, how many were answered at all, the latency of
those answered, and how many suggestions came within the pause after Enter.

The model defaults to a random-weight tiny_starcoder_py shape (int8); pass ``--model`` for a trained
one (random weights never predict the typed text, so the cache and prefetch show their cost but
no hits there).

llama.cpp (the ``[llama]`` extra) is compared when llama-cpp-python is installed, through the
engine's ``llamacpp`` backend (Q8_0): it keeps the KV cache of the longest common prompt prefix
between requests, so each keystroke evaluates only the tokens after it.
  llama.cpp PSM (as editors run it)
                       the llamacpp backend with the prompt in PSM order (prefix, suffix, middle:
                       what llama.vim, Tabby and llama.cpp's /infill send), no completion cache;
                       llama.cpp keeps the KV cache of the longest common prompt prefix
  llama.cpp            the same in SPM order (typing only appends to the prompt)
  llama.cpp +cache     the same with the typed-through cache and prefetch
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import sys
import textwrap as textwrap_module
import time
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def session_texts(source_file: Path | None = None, method: str = "_wrap_chunks") -> tuple[str, str, str]:
    """(text before the deleted body, the deleted body, text after it) of ``method`` in
    ``source_file`` (default: the standard library's textwrap.py, which real models have seen)."""
    source = (source_file or Path(textwrap_module.__file__)).read_text()
    match = re.search(
        rf"^    def {re.escape(method)}\(.*\n(?:        \"\"\".*\"\"\"\n)?", source, re.MULTILINE
    )
    if match is None:
        raise SystemExit(f"{source_file or 'textwrap.py'} has no method {method}; pass --source and --method")
    start = match.end()
    end_match = re.compile(r"^    def |^\S", re.MULTILINE).search(source, start)
    end = end_match.start() if end_match else len(source)
    body = source[start:end]
    stripped = body.rstrip("\n")
    return source[:start], stripped, "\n" + source[start + len(stripped) :]


CLOSER_OF = {"(": ")", "[": "]", "{": "}", '"': '"', "'": "'"}


def _in_string(line: str) -> bool:
    """Whether the end of ``line`` is inside a string literal (quotes counted, escapes skipped)."""
    quote, i = "", 0
    while i < len(line):
        ch = line[i]
        if quote and ch == "\\":
            i += 1
        elif quote and ch == quote:
            quote = ""
        elif not quote and ch in "\"'":
            quote = ch
        elif not quote and ch == "#":
            return True  # a comment: no auto-closing there either
        i += 1
    return bool(quote)


def editor_states(body: str, auto_close: bool) -> list[tuple[str, str]]:
    """(typed text, closers the editor inserted after the cursor) after each keystroke of ``body``.

    Auto-closing as VS Code does by default: an opener outside strings and comments inserts its
    closer when the cursor is at the end of the line or before a closer; a quote does so when the
    character before it is not a letter or digit; typing a pending closer steps over it. A line
    break leaves the closers behind (the editor would move them to a line of their own).
    """
    states, typed, pending = [], "", ""
    for ch in body:
        line = typed.rsplit("\n", 1)[-1]
        if auto_close and pending and ch == pending[0]:
            pending = pending[1:]
        elif auto_close and ch in CLOSER_OF and not _in_string(line):
            quote = ch in "\"'"
            if not (quote and line[-1:].isalnum()):
                pending = CLOSER_OF[ch] + pending
        if ch == "\n":
            pending = ""
        typed += ch
        states.append((typed, pending))
    return states


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Session:
    """One configuration's model, completion service and counters while the keystrokes are replayed."""

    def __init__(self, name: str, model, *, use_cache: bool, prefetch: bool) -> None:
        from engine.service import CompletionService

        self.name, self.model, self.use_cache = name, model, use_cache
        self.service = CompletionService(model, prefetch=prefetch)
        self.latencies: list[float] = []
        self.model_runs = self.cache_hits = 0

    def keystroke(self, prefix: str, suffix: str, new_tokens: int) -> None:
        """One request through the product's completion service, then the idle time before the next
        keystroke, in which its prefetch (when on) runs; only the request is timed."""
        from engine.types import CompletionRequest

        request = CompletionRequest(
            "file:///textwrap.py", prefix, suffix, max_new_tokens=new_tokens, use_cache=self.use_cache
        )
        start = time.perf_counter()
        completion = self.service.submit(request).result()
        self.latencies.append((time.perf_counter() - start) * 1000)
        if completion.cached:
            self.cache_hits += 1
        else:
            self.model_runs += 1
        self.service.wait_idle()

    def replay_paced(
        self, texts: list[tuple[str, str]], new_tokens: int, pace_s: float, line_pause_s: float
    ) -> list[tuple[float | None, bool]]:
        """Type in real time: a keystroke every ``pace_s`` seconds (``line_pause_s`` after a
        newline), each request superseding the one before, as an editor sends them. For each
        keystroke: milliseconds until its suggestion (None if superseded first) and whether it
        came before the next keystroke."""
        from engine.types import CompletionRequest

        moments, at = [], 0.0
        for i, (prefix, _suffix) in enumerate(texts):
            moments.append(at)
            at += line_pause_s if prefix.endswith("\n") and i + 1 < len(texts) else pace_s
        answered: list[float | None] = [None] * len(texts)
        futures = []
        start = time.perf_counter()
        for i, (prefix, suffix) in enumerate(texts):
            time.sleep(max(0.0, start + moments[i] - time.perf_counter()))
            sent = time.perf_counter()
            request = CompletionRequest(
                "file:///typed.py", prefix, suffix, max_new_tokens=new_tokens, use_cache=self.use_cache
            )
            future = self.service.submit(request)

            def done(future, i=i, sent=sent) -> None:
                if not future.cancelled() and future.exception() is None and not future.result().cancelled:
                    answered[i] = (time.perf_counter() - sent) * 1000
                    if future.result().cached:
                        self.cache_hits += 1
                    else:
                        self.model_runs += 1

            future.add_done_callback(done)
            futures.append(future)
        for future in futures:
            with contextlib.suppress(Exception):
                future.result()
        self.service.wait_idle()
        results = []
        for i, latency in enumerate(answered):
            gap = (moments[i + 1] - moments[i]) * 1000 if i + 1 < len(texts) else float("inf")
            results.append((latency, latency is not None and latency <= gap))
        self.latencies = [latency for latency, _ in results if latency is not None]
        return results

    def row(self, marked: list[int]) -> dict:
        """The configuration's results; ``marked``: keystrokes timed apart (auto-closed brackets)."""
        cache = self.model.cache
        at_marked = [self.latencies[i] for i in marked]
        return {
            "marked_median": statistics.median(at_marked) if at_marked else None,
            "name": self.name,
            "median": statistics.median(self.latencies),
            "p95": percentile(self.latencies, 0.95),
            "model_runs": self.model_runs,
            "cache_hits": self.cache_hits,
            "prefetch_runs": self.service.counters().prefetched,
            "prefetch_ms": statistics.median(self.service.prefetch_ms) if self.service.prefetch_ms else 0.0,
            "head_reuses": getattr(self.model.backend, "static_prompt_hits", 0),
            "head_mb": getattr(self.model.backend, "_static_bytes", 0) / 2**20,
            "cache_kb": sum(len(p) + len(s) + len(t) for (p, s), t in cache._entries.items()) / 1e3,
        }


def load(
    model_path: str | None,
    threads: int,
    static: bool,
    max_prompt_tokens: int,
    backend: str = "ct2",
    elide_closing_rest: bool = True,
    fim_order: str = "auto",
):
    from engine.backends.ct2 import CT2Backend
    from engine.convert import ct2_folder_for
    from engine.loading import inspect_model, load_tokenizer
    from engine.model import CodeModel
    from engine.prompts import detect_fim_format

    if model_path is None:
        from engine_bench import model_dir

        model_path = str(model_dir("tiny_starcoder_py"))
    if backend == "llamacpp":
        from engine.model import load_model

        return load_model(
            model_path,
            backend="llamacpp",
            threads=threads,
            max_prompt_tokens=max_prompt_tokens,
            fim_order=fim_order,
        )
    source = inspect_model(model_path)
    folder = source.root if source.kind == "ct2" else ct2_folder_for(source, "int8")
    tokenizer = load_tokenizer(source.tokenizer_dir)
    backend = CT2Backend(folder, tokenizer, source.context_window, threads=threads, static_prompt=static)
    fim = detect_fim_format(tokenizer.get_vocab().keys())
    return CodeModel(
        backend,
        name=source.name,
        family=source.family,
        fim=fim,
        max_prompt_tokens=max_prompt_tokens,
        backend_name="ct2",
        elide_closing_rest=elide_closing_rest,
    )


CONFIGS = (
    ("naive", {"static": False, "use_cache": False, "prefetch": False}),
    ("+static", {"static": True, "use_cache": False, "prefetch": False}),
    ("+cache", {"static": True, "use_cache": True, "prefetch": False}),
    ("+prefetch", {"static": True, "use_cache": True, "prefetch": True}),
    (
        "+prefetch (closers in prompt)",
        {
            "static": True,
            "use_cache": True,
            "prefetch": True,
            "elide_closing_rest": False,
            "auto_close": True,
        },
    ),
    (
        "llama.cpp PSM (as editors run it)",
        {"backend": "llamacpp", "static": False, "use_cache": False, "prefetch": False, "fim_order": "psm"},
    ),
    ("llama.cpp", {"backend": "llamacpp", "static": False, "use_cache": False, "prefetch": False}),
    (
        "llama.cpp +cache +prefetch",
        {"backend": "llamacpp", "static": False, "use_cache": True, "prefetch": True},
    ),
)


def report_paced(sessions: list[Session], states, before: str, after: str, args) -> int:
    """Replay the session in real time for each configuration in turn; print what a user sees."""
    texts = [(before + typed, pending + after) for typed, pending in states]
    line_ends = [i for i, (prefix, _) in enumerate(texts) if prefix.endswith("\n")]
    print(
        f"\n{len(texts)} keystrokes typed in real time, one every {args.pace_ms:.0f} ms and "
        f"{args.line_pause_ms:.0f} ms after each of the {len(line_ends)} newlines; requests supersede "
        f"each other; a completion of up to {args.new_tokens} tokens, prompts budgeted to "
        f"{args.max_prompt_tokens} tokens, {args.threads} threads\n"
    )
    print(
        "| configuration | shown before the next key | answered | median ms | p95 ms "
        "| shown in the pause after Enter | median ms after Enter | model runs | cache hits |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for session in sessions:
        results = session.replay_paced(texts, args.new_tokens, args.pace_ms / 1000, args.line_pause_ms / 1000)
        shown = sum(ok for _, ok in results)
        latencies = [latency for latency, _ in results if latency is not None]
        after_enter = [results[i] for i in line_ends if i + 1 < len(results)]
        enter_ms = [latency for latency, _ in after_enter if latency is not None]
        print(
            f"| {session.name} | {shown}/{len(results)} | {len(latencies)} "
            f"| {statistics.median(latencies) if latencies else float('nan'):.0f} "
            f"| {percentile(latencies, 0.95) if latencies else float('nan'):.0f} "
            f"| {sum(ok for _, ok in after_enter)}/{len(after_enter)} "
            f"| {statistics.median(enter_ms) if enter_ms else float('nan'):.0f} "
            f"| {session.model_runs} | {session.cache_hits} |",
            flush=True,
        )
        session.service.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model path (default: random tiny_starcoder_py shape)")
    parser.add_argument("--keystrokes", type=int, default=400)
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="file whose --method body is typed back (default: textwrap.py; benchmarks/data/ledger.py "
        "was written for this and never published, so a real model cannot recite it)",
    )
    parser.add_argument("--method", default="_wrap_chunks", help="method whose body is deleted and typed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--max-prompt-tokens", type=int, default=512)
    parser.add_argument("--only", default=None, help="comma-separated configurations to run")
    parser.add_argument(
        "--pace-ms",
        type=float,
        default=None,
        help="type in real time, a keystroke every PACE ms, each request superseding the last "
        "(default: each keystroke waits for its answer and the idle work after it)",
    )
    parser.add_argument(
        "--line-pause-ms", type=float, default=1000.0, help="with --pace-ms: the pause after Enter"
    )
    parser.add_argument(
        "--auto-close",
        action="store_true",
        help="replay the typing with the editor's auto-closed brackets and quotes after the cursor",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from engine.backends.llamacpp import llama_cpp_available

    before, body, after = session_texts(args.source, args.method)
    if args.auto_close:  # the docstring stays written: brackets are not auto-closed in strings
        code = body.index('"""', body.index('"""') + 3) + 4
        before, body = before + body[:code], body[code:]
    states = editor_states(body[: args.keystrokes], args.auto_close)
    load_start = os.getloadavg()
    wanted = set(args.only.split(",")) if args.only else None
    sessions = []
    rss_before = rss_bytes()
    for name, options in CONFIGS:
        if (wanted and name not in wanted) or (options.get("auto_close") and not args.auto_close):
            continue
        backend = options.get("backend", "ct2")
        if backend == "llamacpp" and not llama_cpp_available():
            print(
                f"{name}: skipped, llama-cpp-python is not installed (pip install -e .[llama])",
                file=sys.stderr,
            )
            continue
        model = load(
            args.model,
            args.threads,
            options["static"],
            args.max_prompt_tokens,
            backend,
            elide_closing_rest=options.get("elide_closing_rest", True),
            fim_order=options.get("fim_order", "auto"),
        )
        model.complete(before, after, max_new_tokens=4, use_cache=False)  # warm-up
        sessions.append(Session(name, model, use_cache=options["use_cache"], prefetch=options["prefetch"]))
    if args.pace_ms is not None:
        return report_paced(sessions, states, before, after, args)
    # Interleaved: every keystroke is answered by each configuration in turn, so a change in
    # machine load hits all of them alike.
    for typed, pending in tqdm(states, desc="keystrokes", unit="key"):
        for session in sessions:
            session.keystroke(before + typed, pending + after, args.new_tokens)
    # the keystrokes right after the editor inserted or stepped over a closer
    marked = [i for i in range(1, len(states)) if states[i][1] != states[i - 1][1]]
    rows = [session.row(marked) for session in sessions]
    rss_after = rss_bytes()

    print(
        f"\n{len(states)} keystrokes{' (editor auto-closing brackets and quotes)' if args.auto_close else ''}, "
        f"a completion of up to {args.new_tokens} tokens after each, prompts budgeted to "
        f"{args.max_prompt_tokens} tokens, {args.threads} threads, CTranslate2 int8 / llama.cpp Q8_0, model "
        f"{sessions[0].model.name if sessions else '-'}; load average at start {load_start[0]:.2f}, "
        f"at end {os.getloadavg()[0]:.2f}; process RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MB\n"
    )
    base = rows[0]["median"] if rows else 1.0
    print(
        "| configuration | median ms | p95 ms | median vs naive | model runs | cache hits | head reuses "
        "| prefetch runs (median ms) | cached heads MB | completion cache KB |"
        + (f" median ms at the {len(marked)} bracket keystrokes |" if marked else "")
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if marked else ""))
    for r in rows:
        at_brackets = f" {r['marked_median']:.1f} |" if marked else ""
        print(
            f"| {r['name']} | {r['median']:.1f} | {r['p95']:.1f} | {base / r['median']:.2f}x | {r['model_runs']} "
            f"| {r['cache_hits']} | {r['head_reuses']} | {r['prefetch_runs']} ({r['prefetch_ms']:.0f}) "
            f"| {r['head_mb']:.1f} | {r['cache_kb']:.1f} |{at_brackets}"
        )
    for session in sessions:
        session.service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
