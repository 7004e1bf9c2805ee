"""``stackcoder train self-instruct``: the Self-OSS-Instruct pipeline, stage by stage, resumable.

seeds -> judge (docstring quality) -> concepts (S->C) -> instructions (C->I) -> responses (I->R)
-> validated (sandbox) -> dataset (deduplicated), each stage a jsonl file in the output folder.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from training.errors import ConfigError, CorpusError
from training.sandbox import Limits, Sandbox
from training.self_instruct import concepts, instructions, judge, responses
from training.self_instruct.generation import TextGenerator
from training.self_instruct.stage import run_prompt_stage
from training.self_instruct.store import StageFile
from training.self_instruct.validate import build_dataset, validate

__all__ = [
    "SelfInstructConfig",
    "STAGES",
    "STAGE_RUNNERS",
    "run_pipeline",
    "format_summary",
    "expand_sources",
]

log = logging.getLogger(__name__)

_PYRIGHT_BATCH = 400  # seeds per pyright run
STAGES = ("seeds", "judge", "concepts", "instructions", "responses", "validated", "dataset")


@dataclass
class SelfInstructConfig:
    """Settings of one self-instruct run (logged once and saved to config.json)."""

    max_seeds: int | None = None  # stop gathering after this many seeds (None: all)
    typecheck: bool = True  # pyright, 0 errors required
    stdlib_only: bool = False  # drop seeds importing modules outside the standard library
    judge: bool = True  # docstring-quality judgement by the model
    dedup_threshold: float = 0.5  # MinHash Jaccard above which seeds are near-duplicates
    benchmark_files: tuple[str, ...] = ()  # extra benchmark jsonl files to decontaminate against (MBPP...)
    responses_per_instruction: int = 5  # I->R samples per instruction
    temperature: float = 0.7  # sampling temperature of S->C, C->I and I->R
    instruction_tokens: int = 256  # C->I generation budget
    response_tokens: int = 768  # I->R generation budget
    concurrency: int = 1  # generation requests in flight (raise it for a remote server)
    seed: int = 0  # sampling seed
    until: str = "dataset"  # last stage to run
    limits: Limits = field(default_factory=lambda: Limits(cpu_seconds=10, wall_seconds=20))

    def __post_init__(self) -> None:
        if self.until not in STAGES:
            raise ConfigError(f"unknown --until stage {self.until!r}; choose one of {', '.join(STAGES)}")
        if self.responses_per_instruction < 1:
            raise ConfigError("--responses must be at least 1")
        if not 0 < self.dedup_threshold <= 1:
            raise ConfigError("--dedup-threshold must be in (0, 1]")
        if self.max_seeds is not None and self.max_seeds < 1:
            raise ConfigError("--max-seeds must be at least 1")
        if self.temperature < 0:
            raise ConfigError("--temperature must be 0 or positive")
        if self.instruction_tokens < 16 or self.response_tokens < 16:
            raise ConfigError("--instruction-tokens and --response-tokens must be at least 16")


_SHARD_PATTERNS = ("*.jsonl.gz", "*.jsonl", "*.parquet")


def expand_sources(sources: Sequence[str]) -> list[str]:
    """Corpus folders (the output of `train corpus`: train/ and heldout/ shards) become their train shards;
    other folders and files are kept as they are."""
    expanded: list[str] = []
    for source in sources:
        path = Path(source)
        shard_dir = path / "train" if (path / "train").is_dir() else path
        shards = (
            sorted(str(f) for pattern in _SHARD_PATTERNS for f in shard_dir.glob(pattern))
            if path.is_dir()
            else []
        )
        expanded.extend(shards or [source])
    return expanded


def gather_seeds(
    sources: Sequence[str], out: StageFile, config: SelfInstructConfig, progress: bool = True
) -> dict:
    """Stage 1: extract, filter, type-check, decontaminate and near-deduplicate seed functions."""
    from tqdm import tqdm

    from attribution.sources import SkipStats, iter_source_files
    from training.self_instruct.seeds import decontaminate, extract_seeds, near_dedup
    from training.self_instruct.typecheck import pyright_errors

    if not sources:
        raise CorpusError("no seed sources given; pass corpus folders, .jsonl(.gz) or .parquet files")
    missing = [s for s in sources if not Path(s).exists()]
    if missing:
        raise CorpusError(f"seed source {missing[0]} does not exist; pass an existing folder or corpus file")
    drops: Counter = Counter()
    stats = SkipStats()
    files = tqdm(
        iter_source_files(expand_sources(sources), extensions=[".py"], stats=stats),
        desc="seeds: files",
        unit="file",
        disable=not progress,
    )
    extracted = list(extract_seeds(files, drops, stdlib_only=config.stdlib_only))
    found = len(extracted) + sum(drops.values()) - drops["unparsable_file"]
    seeds = near_dedup(extracted, drops, config.dedup_threshold)
    seeds = decontaminate(seeds, drops, files=config.benchmark_files)
    if config.max_seeds is not None:
        # A capped run takes a random sample across repositories, not the first files' functions.
        random.Random(config.seed).shuffle(seeds)
    if config.typecheck and seeds:
        checked: list = []
        bar = tqdm(total=len(seeds), desc="seeds: pyright", unit="seed", disable=not progress)
        for start in range(0, len(seeds), _PYRIGHT_BATCH):
            batch = seeds[start : start + _PYRIGHT_BATCH]
            errors = pyright_errors([s.code for s in batch], batch_size=_PYRIGHT_BATCH)
            drops["pyright_errors"] += sum(1 for e in errors if e)
            checked += [s for s, e in zip(batch, errors, strict=True) if e == 0]
            bar.update(len(batch))
            if config.max_seeds is not None and len(checked) >= config.max_seeds:
                drops["over_max_seeds"] += len(seeds) - start - len(batch)  # never type-checked
                break
        bar.close()
        seeds = checked
    if config.max_seeds is not None and len(seeds) > config.max_seeds:
        drops["over_max_seeds"] += len(seeds) - config.max_seeds
        seeds = seeds[: config.max_seeds]
    out.reset()
    for seed in seeds:
        out.append({**seed.to_dict(), "kept": True})
    counts = {
        "input": found,
        "kept": len(seeds),
        "dropped": dict(drops),
        "skipped_files": dict(stats.counts),
        "settings": seed_settings(config, sources),
    }
    out.finish(counts)
    return counts


def seed_settings(config: SelfInstructConfig, sources: Sequence[str]) -> dict[str, Any]:
    """What decides the seeds stage's output: a finished stage gathered with other settings (a
    larger ``--max-seeds``, other sources) is gathered again."""
    return {
        "sources": [str(s) for s in sources],
        "max_seeds": config.max_seeds,
        "typecheck": config.typecheck,
        "stdlib_only": config.stdlib_only,
        "dedup_threshold": config.dedup_threshold,
        "benchmark_files": list(config.benchmark_files),
        "seed": config.seed,
    }


def _kept(stage: StageFile) -> list[dict[str, Any]]:
    return [r for r in stage.read() if r.get("kept")]


@dataclass
class _Run:
    """What every stage runner sees."""

    sources: Sequence[str]
    files: dict[str, StageFile]
    config: SelfInstructConfig
    model: TextGenerator | None
    sandbox: Sandbox | None
    progress: bool

    def needs_model(self) -> TextGenerator:
        if self.model is None:
            raise ConfigError(
                "this stage prompts the model; pass --model PATH (or a server URL with --backend http)"
            )
        return self.model

    def previous(self, name: str) -> list[dict[str, Any]]:
        """The kept records of the stage before ``name``."""
        return _kept(self.files[STAGES[STAGES.index(name) - 1]])


def _run_seeds(run: _Run, name: str) -> dict:
    return gather_seeds(run.sources, run.files[name], run.config, run.progress)


def _run_judge(run: _Run, name: str) -> dict:
    stage = run.files[name]
    if run.config.judge:
        return _run_prompting(run, name)
    seeds = run.previous(name)
    stage.reset()
    for record in seeds:
        stage.append(record)
    counts = {"input": len(seeds), "kept": len(seeds), "dropped": {}, "skipped": True}
    stage.finish(counts)
    return counts


# Prompting stages: name -> (module with SAMPLING/SHOTS/prompt/parse, progress-bar label)
_PROMPTING = {
    "judge": (judge, "judge docstrings"),
    "concepts": (concepts, "S->C"),
    "instructions": (instructions, "C->I"),
    "responses": (responses, "I->R"),
}


def _run_prompting(run: _Run, name: str) -> dict:
    module, label = _PROMPTING[name]
    config = run.config
    sampling = module.SAMPLING
    if sampling.temperature > 0:  # the judge stays greedy
        budget = {"instructions": config.instruction_tokens, "responses": config.response_tokens}
        sampling = replace(
            sampling, temperature=config.temperature, max_new_tokens=budget.get(name, sampling.max_new_tokens)
        )
    return run_prompt_stage(
        run.needs_model(),
        run.previous(name),
        run.files[name],
        prompt=module.prompt,
        shots=module.SHOTS,
        sampling=sampling,
        parse=module.parse,
        samples=config.responses_per_instruction if name == "responses" else 1,
        concurrency=config.concurrency,
        seed=config.seed,
        desc=label,
        progress=run.progress,
    )


def _run_validated(run: _Run, name: str) -> dict:
    run.sandbox = run.sandbox or Sandbox(run.config.limits)
    return validate(run.previous(name), run.files[name], run.sandbox, progress=run.progress)


def _run_dataset(run: _Run, name: str) -> dict:
    return build_dataset(run.files["validated"], run.files[name])


# Stage name -> runner, in pipeline order.
STAGE_RUNNERS: dict[str, Callable[[_Run, str], dict]] = {
    "seeds": _run_seeds,
    "judge": _run_judge,
    "concepts": _run_prompting,
    "instructions": _run_prompting,
    "responses": _run_prompting,
    "validated": _run_validated,
    "dataset": _run_dataset,
}


def run_pipeline(
    sources: Sequence[str],
    out_dir: str | Path,
    model: TextGenerator | None,
    config: SelfInstructConfig,
    *,
    sandbox: Sandbox | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Run (or resume) every stage up to ``config.until``; returns each stage's counts.

    A finished stage is reused unless a stage before it had to run (the seeds are gathered again
    when their settings changed, e.g. a larger ``max_seeds``); an interrupted stage continues where
    it stopped (records are keyed by seed, so finished ones are not redone).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps({**asdict(config), "limits": config.limits.to_dict()}, indent=2)
    )
    log.info("self-instruct config %s", config)
    run = _Run(sources, {name: StageFile(out, name) for name in STAGES}, config, model, sandbox, progress)
    summary: dict[str, dict] = {}
    upstream_ran = False
    for name in STAGES:
        stage = run.files[name]
        if (
            name == "seeds"
            and stage.complete
            and stage.counts().get("settings") != seed_settings(config, sources)
        ):
            log.info("seed settings changed since the seeds were gathered: gathering them again")
            stage.reset()
        if stage.complete and not upstream_ran:
            summary[name] = stage.counts()
        else:
            summary[name] = STAGE_RUNNERS[name](run, name)
            upstream_ran = True
        if name == config.until:
            break
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def format_summary(summary: dict[str, dict]) -> str:
    """A table of every stage's input, kept and dropped counts with the drop reasons."""
    lines = [f"{'stage':<13}{'input':>8}{'kept':>8}{'dropped':>9}  reasons", "-" * 78]
    for name, counts in summary.items():
        dropped = counts.get("dropped", {})
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(dropped.items(), key=lambda kv: -kv[1]) if v)
        lines.append(
            f"{name:<13}{counts.get('input', 0):>8}{counts.get('kept', 0):>8}{sum(dropped.values()):>9}  {reasons}"
        )
        if name == "validated" and counts.get("executed"):
            lines.append(
                f"{'':<13}sandbox ({counts.get('isolation')}): {counts['passed']}/{counts['executed']} responses "
                f"passed their tests ({counts['pass_rate'] * 100:.1f}%)"
            )
    return "\n".join(lines)
