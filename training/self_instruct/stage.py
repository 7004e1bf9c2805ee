"""The common shape of the prompting stages: input records -> prompts -> model -> output records."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from training.self_instruct.generation import Sampling, TextGenerator, generate_all
from training.self_instruct.store import StageFile

__all__ = ["run_prompt_stage"]


def run_prompt_stage(
    model: TextGenerator,
    inputs: Iterable[dict[str, Any]],
    out: StageFile,
    *,
    prompt: Callable[[dict[str, Any]], str],
    sampling: Sampling,
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
    done = out.done_ids()
    todo = [record for record in inputs if record["id"] not in done]
    by_id = {record["id"]: record for record in todo}
    texts: dict[str, list[str | None]] = {key: [] for key in by_id}
    jobs = [(key, prompt(record), i) for key, record in by_id.items() for i in range(samples)]

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
    result = {"input": len(done) + len(todo), "kept": kept, "dropped": dict(dropped)}
    out.finish(result)
    return result
