"""The common shape of the prompting stages: input records -> prompts -> model -> output records."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from training.self_instruct.generation import Sampling, TextGenerator, generate_all
from training.self_instruct.store import StageFile

__all__ = ["run_prompt_stage", "fit_prompt"]

_MIN_RESERVE = 64  # fewest tokens left for a generation when fitting a prompt


def fit_prompt(
    model: Any,
    build: Callable[[dict[str, Any], int | None], str],
    record: dict[str, Any],
    shots: int,
    max_new: int,
) -> str | None:
    """The prompt with the most few-shot examples (at least one) that leaves room in the model's
    context window for the generation (``max_new`` tokens, at most half the window); None if even
    one example does not fit. Models that do not tell their window get every example."""
    window = getattr(model, "context_window", None)
    count = getattr(model, "count_tokens", None)
    if not isinstance(window, int) or count is None:
        return build(record, None)
    # Prefer room for the whole generation; in a small window settle for less (the engine stops
    # generating at the window's end), down to _MIN_RESERVE tokens.
    first = min(max_new, window // 2)
    reserves = sorted({max(_MIN_RESERVE, r) for r in (first, window // 4, _MIN_RESERVE)}, reverse=True)
    lengths: dict[int, int] = {}
    for reserve in reserves:
        for n in range(shots, 0, -1):
            if n not in lengths:
                lengths[n] = count(build(record, n))
            if lengths[n] + reserve <= window:
                return build(record, n)
    return None


def run_prompt_stage(
    model: TextGenerator,
    inputs: Iterable[dict[str, Any]],
    out: StageFile,
    *,
    prompt: Callable[[dict[str, Any], int | None], str],
    sampling: Sampling,
    shots: int,
    parse: Callable[[dict[str, Any], list[str]], tuple[dict[str, Any] | None, str]],
    samples: int = 1,
    concurrency: int = 1,
    seed: int = 0,
    desc: str,
    progress: bool = True,
) -> dict[str, Any]:
    """Prompt the model ``samples`` times per input not yet in ``out`` and write parsed records.

    ``parse(input, texts)`` returns ``(record or None, outcome)``; ``None`` drops the input with
    ``outcome`` as the reason; kept records carry ``"kept": True``, dropped ones are written with
    ``"kept": False`` so a resumed run does not retry them. Returns the stage's counts.
    """
    inputs = list(inputs)
    out.retain({record["id"] for record in inputs})
    done = out.done_ids()
    todo = [record for record in inputs if record["id"] not in done]
    by_id = {record["id"]: record for record in todo}
    texts: dict[str, list[str | None]] = {key: [] for key in by_id}
    jobs = []
    for key, record in list(by_id.items()):
        text = fit_prompt(model, prompt, record, shots, sampling.max_new_tokens)
        if text is None:
            out.append({"id": key, "kept": False, "reason": "too_long_for_context"})
            continue
        jobs.extend((key, text, i) for i in range(samples))

    def on_result(key: str, text: str | None, error: str | None) -> None:
        texts[key].append(text if error is None else None)
        if len(texts[key]) == samples:
            got = [t for t in texts[key] if t is not None]
            record, outcome = (None, "generation_error") if not got else parse(by_id[key], got)
            if record is None:
                out.append({"id": key, "kept": False, "reason": outcome})
            else:
                out.append({**record, "id": key, "kept": True})

    generate_all(
        model, jobs, sampling, on_result, concurrency=concurrency, seed=seed, desc=desc, progress=progress
    )
    kept, dropped = 0, Counter()
    for record in out.read():
        if record.get("kept"):
            kept += 1
        else:
            dropped[record.get("reason", "unknown")] += 1
    result = {"input": len(inputs), "kept": kept, "dropped": dict(dropped)}
    out.finish(result)
    return result
