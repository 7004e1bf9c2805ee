"""Optimistic token healing: one unconstrained request when the model reproduces the removed text."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import load_model
from engine.backends.tokens import OptimisticHealing
from engine.generation import GenerationConfig

PROMPTS = (
    "def area(width, height):\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n",
    "import os\nimport sys\n\n\ndef main(argv):\n    ",
    "for index, value in enumerate(values):\n        ",
    "def read(path):\n    with open(path) as handle:\n        return handle.re",
    "    parser = argparse.ArgumentParser()\n    parser.add_",
)


def test_tries_while_they_mostly_succeed_and_probes_after_they_fail() -> None:
    policy = OptimisticHealing(window=8, probe_every=5)
    assert policy.attempt()
    for _ in range(8):
        policy.record(False)
    tries = [policy.attempt() for _ in range(10)]
    assert tries.count(True) == 2 and tries[4] and tries[9]  # every fifth healed request probes
    for _ in range(8):
        policy.record(True)
    assert policy.attempt() and policy.hits == 8 and policy.misses == 8
    assert not OptimisticHealing(enabled=False).attempt()


@pytest.fixture(scope="module")
def trained(default_model_dir: Path):
    with load_model(default_model_dir, threads=1) as model:
        yield model.backend


def test_the_trained_model_skips_the_constrained_step_with_the_same_greedy_output(trained) -> None:
    config = GenerationConfig(max_new_tokens=16)
    healer = trained._healer
    hits = 0
    for prompt in PROMPTS:
        assert healer.heal(trained.encode(prompt)) is not None, prompt
        trained.optimistic_healing = OptimisticHealing()
        fast = "".join(trained.stream(prompt, config))
        hits += trained.optimistic_healing.hits
        trained.optimistic_healing = OptimisticHealing(enabled=False)
        constrained = "".join(trained.stream(prompt, config))
        assert fast == constrained, prompt
    assert hits >= 2  # a trained model mostly continues with what was removed


def test_sampling_always_takes_the_constrained_step(trained) -> None:
    trained.optimistic_healing = OptimisticHealing()
    "".join(trained.stream(PROMPTS[0], GenerationConfig(max_new_tokens=4, temperature=0.8, seed=1)))
    assert trained.optimistic_healing.hits == trained.optimistic_healing.misses == 0
