"""Self-validation: run each response's implementation and tests in the sandbox, keep one passing
response per instruction, then drop duplicate instructions and responses and benchmark leaks."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from training.sandbox import Sandbox
from training.self_instruct.store import StageFile

__all__ = ["program_of", "validate", "build_dataset"]


def program_of(candidate: dict[str, Any]) -> str:
    """The program executed for a response: its implementation followed by its tests."""
    return f"{candidate['implementation']}\n\n\n{candidate['tests']}\n"


def validate(
    records: Iterable[dict[str, Any]], out: StageFile, sandbox: Sandbox, *, progress: bool = True
) -> dict[str, Any]:
    """Execute every candidate of the instructions not yet in ``out``; keep the first passing one."""
    records = [r for r in records if r.get("kept")]
    out.retain({r["id"] for r in records})
    done = out.done_ids()
    todo = [r for r in records if r["id"] not in done]
    flat = [(r, c) for r in todo for c in r["candidates"]]
    results = sandbox.run_many(
        [program_of(c) for _, c in flat], progress="self-validate" if progress else False
    )
    by_record: dict[str, list] = {r["id"]: [] for r in todo}
    for (record, candidate), result in zip(flat, results, strict=True):
        by_record[record["id"]].append((candidate, result))
    for record in todo:
        tried = by_record[record["id"]]
        passing = [c for c, res in tried if res.passed]
        entry = {
            "id": record["id"],
            "seed_id": record["seed_id"],
            "instruction": record["instruction"],
            "statuses": [res.status for _, res in tried],
            "reasons": [res.reason for _, res in tried],
        }
        if passing:
            out.append({**entry, "kept": True, "response": passing[0]["response"]})
        else:
            out.append({**entry, "kept": False, "reason": "no_passing_response"})
    statuses: Counter = Counter()
    kept = total = executed = 0
    for record in out.read():
        total += 1
        kept += int(bool(record.get("kept")))
        executed += len(record["statuses"])
        statuses.update(record["statuses"])
    counts = {
        "input": total,
        "kept": kept,
        "dropped": {"no_passing_response": total - kept},
        "executed": executed,
        "passed": statuses.get("passed", 0),
        "pass_rate": round(statuses.get("passed", 0) / executed, 4) if executed else 0.0,
        "statuses": dict(statuses),
        "isolation": sandbox.isolation,
    }
    out.finish(counts)
    return counts


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def build_dataset(validated: StageFile, out: StageFile) -> dict[str, Any]:
    """Deduplicate instructions and responses and drop benchmark leaks; write the SFT dataset."""
    from training.decontam import Decontaminator

    checker = Decontaminator.for_benchmarks(("humaneval",))
    out.reset()
    drops: Counter = Counter()
    seen_instructions: set[str] = set()
    seen_responses: set[str] = set()
    kept = total = 0
    for record in validated.read():
        if not record.get("kept"):
            continue
        total += 1
        instruction, response = _norm(record["instruction"]), _norm(record["response"])
        if instruction in seen_instructions:
            drops["duplicate_instruction"] += 1
            continue
        if response in seen_responses:
            drops["duplicate_response"] += 1
            continue
        if checker.match(record["response"]):
            drops["benchmark_contamination"] += 1
            continue
        seen_instructions.add(instruction)
        seen_responses.add(response)
        out.append(
            {
                "id": record["id"],
                "seed_id": record["seed_id"],
                "instruction": record["instruction"],
                "response": record["response"],
            }
        )
        kept += 1
    counts = {"input": total, "kept": kept, "dropped": dict(drops)}
    out.finish(counts)
    return counts
