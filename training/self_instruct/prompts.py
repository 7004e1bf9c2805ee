"""Few-shot prompts of the Self-OSS-Instruct stages (S->C, C->I, I->R and the docstring judge).

Each prompt is a fixed header, hand-written examples (the first ``shots`` of them; all by default)
and the open slot for the new item; the model continues after the slot's label and stops at the
next example separator.
"""

from __future__ import annotations

__all__ = [
    "SEPARATOR",
    "MAX_SHOTS",
    "judge_prompt",
    "concepts_prompt",
    "instruction_prompt",
    "response_prompt",
    "STOPS",
]

SEPARATOR = "\n\n### Example"
STOPS = (SEPARATOR, "### Example", "\n### Snippet", "\n### Concepts", "\n### Instruction", "<|endoftext|>")

_JUDGE_HEADER = (
    "Decide whether each function's docstring is useful: does it say what the function does, what "
    "its arguments are and what it returns, in words a programmer can act on? Answer Yes or No."
)
_JUDGE_EXAMPLES = [
    (
        "def clamp(value: float, low: float, high: float) -> float:\n"
        '    """Limit value to the closed interval [low, high] and return it."""\n'
        "    return max(low, min(high, value))\n",
        "Yes",
    ),
    (
        'def f(x, y):\n    """todo"""\n    return x * 3 + y\n',
        "No",
    ),
    (
        "def chunked(items: list, size: int) -> list[list]:\n"
        '    """Split items into consecutive lists of at most size elements.\n\n'
        "    Args:\n        items: the sequence to split.\n        size: the length of each chunk.\n"
        '    Returns:\n        The chunks, in order; the last one may be shorter.\n    """\n'
        "    return [items[i : i + size] for i in range(0, len(items), size)]\n",
        "Yes",
    ),
    (
        'def process(data):\n    """Process the data."""\n    return [d for d in data if d]\n',
        "No",
    ),
]

# (snippet, concepts, instruction)
_SEED_EXAMPLES = [
    (
        "def parse_duration(text: str) -> int:\n"
        '    """Convert a duration such as "1h30m" or "45s" to seconds."""\n'
        "    units = {'h': 3600, 'm': 60, 's': 1}\n"
        "    total, number = 0, ''\n"
        "    for ch in text:\n"
        "        if ch.isdigit():\n"
        "            number += ch\n"
        "        else:\n"
        "            total += int(number) * units[ch]\n"
        "            number = ''\n"
        "    return total\n",
        "string parsing, character classification, dictionary lookup, accumulation",
        "Write a Python function `parse_duration(text)` that converts a duration written as a sequence of "
        'numbers followed by the units h, m or s (for example "1h30m" or "45s") into a number of seconds. '
        "Raise a ValueError for an unknown unit.",
    ),
    (
        "def merge_intervals(intervals):\n"
        '    """Merge overlapping [start, end] intervals and return them sorted."""\n'
        "    merged = []\n"
        "    for start, end in sorted(intervals):\n"
        "        if merged and start <= merged[-1][1]:\n"
        "            merged[-1][1] = max(merged[-1][1], end)\n"
        "        else:\n"
        "            merged.append([start, end])\n"
        "    return merged\n",
        "sorting, interval overlap, greedy merging, list mutation",
        "Write a Python function `merge_intervals(intervals)` that takes a list of [start, end] pairs and "
        "returns a new sorted list in which all overlapping or touching intervals are merged into one.",
    ),
    (
        "def top_words(text: str, k: int) -> list:\n"
        '    """Return the k most frequent lowercase words of text, most frequent first."""\n'
        "    from collections import Counter\n"
        "    words = text.lower().split()\n"
        "    return [w for w, _ in Counter(words).most_common(k)]\n",
        "word frequency counting, collections.Counter, case normalisation, top-k selection",
        "Write a Python function `top_words(text, k)` that returns the k most frequent words of a text, "
        "ignoring case, ordered from the most to the least frequent; ties keep the order of first appearance.",
    ),
]

# (instruction, response) with the implementation and assert-based tests in two code blocks; the
# shortest first, as it is the one kept when only one example fits the context window.
_RESPONSE_EXAMPLES = [
    (
        "Write a Python function `is_palindrome(text)` that returns True when text reads the same "
        "forwards and backwards, ignoring case.",
        "Compare the lower-cased text with its reverse.\n\n"
        "```python\n"
        "def is_palindrome(text):\n"
        "    text = text.lower()\n"
        "    return text == text[::-1]\n"
        "```\n\n"
        "Tests:\n\n"
        "```python\n"
        "assert is_palindrome('Level')\n"
        "assert not is_palindrome('stack')\n"
        "```",
    ),
    (
        _SEED_EXAMPLES[0][2],
        "Walk the string once, collecting digits into the current number and adding number times the "
        "unit's seconds when a unit letter arrives.\n\n"
        "```python\n"
        "def parse_duration(text):\n"
        "    units = {'h': 3600, 'm': 60, 's': 1}\n"
        "    total, number = 0, ''\n"
        "    for ch in text:\n"
        "        if ch.isdigit():\n"
        "            number += ch\n"
        "        elif ch in units and number:\n"
        "            total += int(number) * units[ch]\n"
        "            number = ''\n"
        "        else:\n"
        "            raise ValueError(f'bad duration: {text!r}')\n"
        "    return total\n"
        "```\n\n"
        "Tests:\n\n"
        "```python\n"
        "assert parse_duration('45s') == 45\n"
        "assert parse_duration('1h30m') == 5400\n"
        "try:\n"
        "    parse_duration('3x')\n"
        "    raise AssertionError('expected ValueError')\n"
        "except ValueError:\n"
        "    pass\n"
        "```",
    ),
    (
        _SEED_EXAMPLES[1][2],
        "Sort the intervals by start, then extend the last merged interval while the next one starts "
        "before it ends.\n\n"
        "```python\n"
        "def merge_intervals(intervals):\n"
        "    merged = []\n"
        "    for start, end in sorted(intervals):\n"
        "        if merged and start <= merged[-1][1]:\n"
        "            merged[-1][1] = max(merged[-1][1], end)\n"
        "        else:\n"
        "            merged.append([start, end])\n"
        "    return merged\n"
        "```\n\n"
        "Tests:\n\n"
        "```python\n"
        "assert merge_intervals([[1, 3], [2, 6], [8, 10]]) == [[1, 6], [8, 10]]\n"
        "assert merge_intervals([[5, 6], [1, 5]]) == [[1, 6]]\n"
        "assert merge_intervals([]) == []\n"
        "```",
    ),
]


def judge_prompt(seed: str, shots: int | None = None) -> str:
    """Few-shot yes/no prompt asking whether a seed's docstring is useful (read greedily)."""
    parts = [_JUDGE_HEADER]
    for code, answer in _JUDGE_EXAMPLES[:shots]:
        parts.append(f"### Example\n### Function\n```python\n{code}```\n### Useful docstring\n{answer}")
    parts.append(f"### Example\n### Function\n```python\n{seed.rstrip()}\n```\n### Useful docstring\n")
    return "\n\n".join(parts)


def concepts_prompt(seed: str, shots: int | None = None) -> str:
    """S->C: list the programming concepts a seed function exercises."""
    parts = [
        "Extract the key programming concepts that each code snippet exercises, as a comma-separated list."
    ]
    for code, concepts, _ in _SEED_EXAMPLES[:shots]:
        parts.append(f"### Example\n### Snippet\n```python\n{code}```\n### Concepts\n{concepts}")
    parts.append(f"### Example\n### Snippet\n```python\n{seed.rstrip()}\n```\n### Concepts\n")
    return "\n\n".join(parts)


def instruction_prompt(concepts: str, shots: int | None = None) -> str:
    """C->I: write a self-contained coding task that exercises the given concepts."""
    parts = [
        "Write a self-contained Python coding task that exercises the given concepts. The task names the "
        "function to write and says exactly what it returns, so that it can be tested with asserts."
    ]
    for _, example_concepts, example_instruction in _SEED_EXAMPLES[:shots]:
        parts.append(f"### Example\n### Concepts\n{example_concepts}\n### Instruction\n{example_instruction}")
    parts.append(f"### Example\n### Concepts\n{concepts.strip()}\n### Instruction\n")
    return "\n\n".join(parts)


def response_prompt(instruction: str, shots: int | None = None) -> str:
    """I->R: answer with a short explanation, an implementation and assert-based tests."""
    parts = [
        "Solve each Python task: explain the approach in one or two sentences, give the implementation in "
        "a ```python block, then tests made of assert statements in a second ```python block. Use only the "
        "standard library."
    ]
    for example_instruction, example_response in _RESPONSE_EXAMPLES[:shots]:
        parts.append(f"### Example\n### Instruction\n{example_instruction}\n### Response\n{example_response}")
    parts.append(f"### Example\n### Instruction\n{instruction.strip()}\n### Response\n")
    return "\n\n".join(parts)


# Examples each prompt has (fewer are used when a prompt must fit a small context window).
MAX_SHOTS = {
    "judge": len(_JUDGE_EXAMPLES),
    "concepts": len(_SEED_EXAMPLES),
    "instructions": len(_SEED_EXAMPLES),
    "responses": len(_RESPONSE_EXAMPLES),
}
