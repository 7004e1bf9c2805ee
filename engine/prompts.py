"""Prompt formats as data: fill-in-the-middle spellings per model family and chat styles.

A model's FIM format is found from its tokenizer's special tokens (``detect_fim_format``); the
prompt is then assembled by ``build_fim_prompt`` in PSM or SPM order, with extra files placed
before it in StarCoder2's repository format when the vocabulary has ``<repo_name>``/``<file_sep>``,
else as comment-headed blocks. Chat prompts follow a style from ``CHAT_STYLES``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from engine.types import Snippet

__all__ = [
    "CHAT_STYLES",
    "FIM_FORMATS",
    "FIM_ORDERS",
    "ChatStyle",
    "FimFormat",
    "build_chat_prompt",
    "build_fim_prompt",
    "chat_stop_strings",
    "build_template_chat_prompt",
    "detect_chat_style",
    "detect_fim_format",
    "prompt_suffix",
]


# --------------------------------------------------------------------------- FIM formats


@dataclass(frozen=True)
class FimFormat:
    """The token strings of one fill-in-the-middle format; ``None`` where the format has none."""

    name: str
    prefix: str  # opens the code before the cursor
    suffix: str  # opens the code after the cursor
    middle: str  # the model writes the middle after this
    pad: str | None = None  # padding token that also ends a middle
    eos: str | None = None  # end of sequence
    file_sep: str | None = None  # separates files in repository context
    repo_name: str | None = None  # opens the repository name in repository context
    repo_sep: str = ""  # text between the repository name and the first file separator

    @property
    def has_repo_context(self) -> bool:
        """Whether extra files can be given in the repository format."""
        return self.file_sep is not None

    @property
    def stop_tokens(self) -> tuple[str, ...]:
        """Token strings that end a generated middle."""
        candidates = (self.eos, self.pad, self.file_sep, self.prefix, self.suffix, self.middle)
        return tuple(dict.fromkeys(t.strip() for t in candidates if t))


FIM_FORMATS: dict[str, FimFormat] = {
    fmt.name: fmt
    for fmt in (
        FimFormat(
            name="starcoder",
            prefix="<fim_prefix>",
            suffix="<fim_suffix>",
            middle="<fim_middle>",
            pad="<fim_pad>",
            eos="<|endoftext|>",
            file_sep="<file_sep>",
            repo_name="<repo_name>",
        ),
        FimFormat(
            name="santacoder",
            prefix="<fim-prefix>",
            suffix="<fim-suffix>",
            middle="<fim-middle>",
            pad="<fim-pad>",
            eos="<|endoftext|>",
        ),
        # Code Llama's reference infilling prompt is "<PRE> {prefix} <SUF>{suffix} <MID>"; its
        # SentencePiece vocabulary spells the tokens with a leading "▁".
        FimFormat(name="codellama", prefix="<PRE> ", suffix=" <SUF>", middle=" <MID>", eos="<EOT>"),
        FimFormat(
            name="deepseek-coder",
            prefix="<｜fim▁begin｜>",
            suffix="<｜fim▁hole｜>",
            middle="<｜fim▁end｜>",
            eos="<｜end▁of▁sentence｜>",
        ),
        FimFormat(
            name="qwen2.5-coder",
            prefix="<|fim_prefix|>",
            suffix="<|fim_suffix|>",
            middle="<|fim_middle|>",
            pad="<|fim_pad|>",
            eos="<|endoftext|>",
            file_sep="<|file_sep|>",
            repo_name="<|repo_name|>",
            repo_sep="\n",
        ),
    )
}

_OPTIONAL_TOKENS = ("pad", "eos", "file_sep", "repo_name")


def _vocab_key(token: str) -> str:
    return token.strip().lstrip("▁").strip()


def detect_fim_format(vocab_tokens: Iterable[str]) -> FimFormat | None:
    """Return the FIM format whose prefix/suffix/middle tokens are all in the vocabulary, or None.

    Optional tokens (pad, eos, file separator, repository name) the vocabulary lacks are set to
    ``None`` on the returned format, so a StarCoder-1 vocabulary (no ``<file_sep>``) gets
    comment-headed snippets instead of the repository format.
    """
    vocab = {_vocab_key(t) for t in vocab_tokens}
    for fmt in FIM_FORMATS.values():
        if all(_vocab_key(t) in vocab for t in (fmt.prefix, fmt.suffix, fmt.middle)):
            missing = {
                field: None
                for field in _OPTIONAL_TOKENS
                if getattr(fmt, field) is not None and _vocab_key(getattr(fmt, field)) not in vocab
            }
            if "file_sep" in missing:
                missing["repo_name"] = None
            return dataclasses.replace(fmt, **missing) if missing else fmt
    return None


# Line-comment markers by file extension, for snippets given as comment-headed blocks.
LINE_COMMENTS: dict[str, str] = {
    **dict.fromkeys((".py", ".pyi", ".sh", ".bash", ".rb", ".pl", ".r", ".yaml", ".yml", ".toml"), "#"),
    **dict.fromkeys(
        (".js", ".jsx", ".ts", ".tsx", ".java", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".go", ".rs"),
        "//",
    ),
    **dict.fromkeys((".kt", ".swift", ".scala", ".php", ".dart", ".zig"), "//"),
    **dict.fromkeys((".sql", ".lua", ".hs"), "--"),
}
DEFAULT_LINE_COMMENT = "#"


def line_comment(path: str | None) -> str:
    """The line-comment marker for a file path (``#`` when the extension is unknown)."""
    if not path:
        return DEFAULT_LINE_COMMENT
    return LINE_COMMENTS.get(PurePosixPath(path).suffix.lower(), DEFAULT_LINE_COMMENT)


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _repo_context(
    fmt: FimFormat, snippets: Sequence[Snippet], repo_name: str | None, path: str | None
) -> str:
    """StarCoder2 repository context: ``<repo_name>name<file_sep>path\\ncode...<file_sep>path\\n``."""
    if not (snippets or repo_name or path):
        return ""
    assert fmt.file_sep is not None
    parts = []
    if repo_name and fmt.repo_name:
        parts.append(f"{fmt.repo_name}{repo_name}{fmt.repo_sep}")
    for snippet in snippets:
        parts.append(f"{fmt.file_sep}{snippet.path}\n{_with_newline(snippet.text)}")
    parts.append(f"{fmt.file_sep}{path or ''}\n")
    return "".join(parts)


def _comment_context(snippets: Sequence[Snippet], path: str | None) -> str:
    """Snippets as blocks headed by a comment naming their file, then the current file's path."""
    if not snippets:
        return ""
    marker = line_comment(path)
    blocks = [f"{marker} Path: {s.path}\n{_with_newline(s.text)}\n" for s in snippets]
    if path:
        blocks.append(f"{marker} Path: {path}\n")
    return "".join(blocks)


# What editors insert after the cursor when an opener is typed (auto-closed brackets and quotes).
_CLOSING_REST = re.compile(r"[ \t)\]}\"'`]+")


def prompt_suffix(suffix: str) -> str:
    """The text after the cursor as the model is shown it: without the rest of the cursor's line
    when that rest is only closing brackets, quotes and blanks.

    Those are what an editor auto-inserts when an opener is typed. Shown to the model, each pair
    would change the start of the suffix, which SPM prompts put first, so the cached state of
    the whole prompt would be lost at every bracket typed. Left out, the prompt stays the one of
    the line being typed; post-processing still sees the real suffix and removes the closers the
    output repeats (``engine.postprocess.balance_brackets``, ``trim_suffix_overlap``)."""
    line_end = suffix.find("\n")
    rest = suffix if line_end < 0 else suffix[:line_end]
    return suffix[len(rest) :] if _CLOSING_REST.fullmatch(rest) else suffix


def _psm(fmt: FimFormat, context: str, prefix: str, suffix: str) -> str:
    return f"{fmt.prefix}{context}{prefix}{fmt.suffix}{suffix}{fmt.middle}"


def _spm(fmt: FimFormat, context: str, prefix: str, suffix: str) -> str:
    # StarCoder's SPM variant: the suffix comes first, so typing only appends to the prompt.
    return f"{fmt.prefix}{fmt.suffix}{suffix}{fmt.middle}{context}{prefix}"


FIM_ORDERS: dict[str, Callable[[FimFormat, str, str, str], str]] = {"psm": _psm, "spm": _spm}


def build_fim_prompt(
    fmt: FimFormat,
    prefix: str,
    suffix: str,
    *,
    order: str = "psm",
    snippets: Sequence[Snippet] = (),
    repo_name: str | None = None,
    path: str | None = None,
) -> str:
    """Assemble a fill-in-the-middle prompt; the model's output is the middle.

    PSM: ``<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>``;
    SPM: ``<fim_prefix><fim_suffix>{suffix}<fim_middle>{prefix}``.
    Snippets (already fitted to the token budget) come first, in the repository format when the
    format has a file separator, else as comment-headed blocks at the start of the prefix.
    """
    try:
        assemble = FIM_ORDERS[order]
    except KeyError:
        raise ValueError(f"unknown FIM order {order!r}; known orders: {', '.join(FIM_ORDERS)}") from None
    if fmt.has_repo_context:
        head = _repo_context(fmt, snippets, repo_name, path)
        return head + assemble(fmt, "", prefix, suffix)
    return assemble(fmt, _comment_context(snippets, path), prefix, suffix)


# --------------------------------------------------------------------------- chat styles


@dataclass(frozen=True)
class ChatStyle:
    """How a conversation is written as one prompt for a model to continue."""

    name: str
    preamble: str  # text before the first turn
    user: str  # template of a user turn, with {content}
    assistant: str  # template of a finished assistant turn, with {content}
    assistant_open: str  # the text the model continues to write its answer
    stop: tuple[str, ...]  # strings that mark the end of the answer
    few_shot: tuple[tuple[str, str], ...] = ()  # example (user, assistant) exchanges
    context: str = "Here is the code I am working on:\n```\n{context}\n```\n\n{content}"


_INSTRUCT = ChatStyle(
    name="instruct",
    preamble=(
        "You are an exceptionally intelligent coding assistant that consistently delivers accurate "
        "and reliable responses to user instructions.\n\n"
    ),
    user="### Instruction\n{content}\n\n",
    assistant="### Response\n{content}\n\n",
    assistant_open="### Response\n",
    stop=("\n### Instruction", "\n### Response"),
)

_TECH_ASSISTANT = ChatStyle(
    name="tech_assistant",
    preamble=(
        "Below is a series of dialogues between a programmer and a technical assistant. The "
        "assistant knows programming languages, libraries and tools well, answers precisely and "
        "briefly, shows code in fenced blocks, and says so when it is not sure.\n\n-----\n\n"
    ),
    user="Human: {content}\n\n",
    assistant="Assistant: {content}\n\n-----\n\n",
    assistant_open="Assistant:",
    stop=("\nHuman:", "\n-----", "\n\nHuman"),
    few_shot=(
        (
            "How do I reverse a list in Python without changing the original?",
            "Use slicing, which returns a new list:\n\n```python\nitems = [1, 2, 3]\n"
            "reversed_items = items[::-1]\n```\n\n`items.reverse()` would reverse it in place instead.",
        ),
        (
            "What does this function do?\n\n```python\ndef f(xs):\n    return {x: xs.count(x) for x in xs}\n```",
            "It maps every distinct element of `xs` to the number of times it occurs. Each "
            "`xs.count(x)` scans the whole list, so it takes quadratic time; "
            "`collections.Counter(xs)` gives the same mapping in one pass.",
        ),
        (
            "Write a shell command that counts the lines of all .py files under the current folder.",
            "```bash\nfind . -name '*.py' -print0 | xargs -0 cat | wc -l\n```\n\n`-print0` and "
            "`-0` keep file names with spaces intact.",
        ),
    ),
)

CHAT_STYLES: dict[str, ChatStyle] = {s.name: s for s in (_INSTRUCT, _TECH_ASSISTANT)}
CHAT_ROLES = ("user", "assistant")


def _style(style: str) -> ChatStyle:
    try:
        return CHAT_STYLES[style]
    except KeyError:
        raise ValueError(f"unknown chat style {style!r}; known styles: {', '.join(CHAT_STYLES)}") from None


def validate_messages(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Check a conversation and return it as (role, content) pairs; the last turn must be the user's."""
    if not messages:
        raise ValueError("the conversation is empty; send at least one user message")
    turns = []
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in CHAT_ROLES:
            raise ValueError(f"message {i} has role {role!r}; use one of: {', '.join(CHAT_ROLES)}")
        if not isinstance(content, str):
            raise ValueError(f"message {i} has no text content; give 'content' as a string")
        turns.append((role, content))
    if turns[-1][0] != "user":
        raise ValueError("the last message must come from the user")
    return turns


def build_chat_prompt(messages: Sequence[Mapping[str, Any]], *, style: str, context: str = "") -> str:
    """Write a conversation as a prompt in ``style``; the model continues with the assistant's answer.

    ``context`` (code from the editor) is attached to the last user message.
    """
    chat = _style(style)
    turns = validate_messages(messages)
    parts = [chat.preamble]
    for question, answer in chat.few_shot:
        parts.append(chat.user.format(content=question))
        parts.append(chat.assistant.format(content=answer))
    last = len(turns) - 1
    for i, (role, content) in enumerate(turns):
        if i == last and context.strip():
            content = chat.context.format(context=context.rstrip("\n"), content=content)
        template = chat.user if role == "user" else chat.assistant
        parts.append(template.format(content=content.strip("\n")))
    parts.append(chat.assistant_open)
    return "".join(parts)


# The model's own chat template (tokenizer.chat_template, e.g. ChatML for Qwen2.5-Coder-Instruct):
# the conversation is written by the template, and the answer ends at the model's end-of-turn token.
TEMPLATE_STYLE = "template"
TEMPLATE_SYSTEM = (
    "You are a coding assistant inside the user's editor. Answer precisely and briefly, "
    "show code in fenced blocks with their language, and say so when you are not sure."
)


def build_template_chat_prompt(
    tokenizer: Any, messages: Sequence[Mapping[str, Any]], *, context: str = ""
) -> str:
    """Write a conversation with the tokenizer's own chat template (the answer follows it)."""
    turns = validate_messages(messages)
    last = len(turns) - 1
    conversation = [{"role": "system", "content": TEMPLATE_SYSTEM}]
    for i, (role, content) in enumerate(turns):
        if i == last and context.strip():
            content = _INSTRUCT.context.format(context=context.rstrip("\n"), content=content)
        conversation.append({"role": role, "content": content.strip("\n")})
    return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)


def chat_stop_strings(style: str) -> tuple[str, ...]:
    """Strings that end the assistant's answer in ``style`` (the template style ends at the
    model's end-of-turn token instead)."""
    if style == TEMPLATE_STYLE:
        return ()
    return _style(style).stop


# Markers of instruction-tuned checkpoints, looked for in the model name and the chat template.
INSTRUCT_MARKERS = ("instruct", "### instruction", "-chat", "sft")


def detect_chat_style(tokenizer: Any, name: str) -> str:
    """``"template"`` for a model with its own chat template (other than the ``### Instruction``
    one), ``"instruct"`` for instruction-tuned models (by name or template), else ``"tech_assistant"``."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, str) and "{%" in template and "### Instruction" not in template:
        return TEMPLATE_STYLE
    haystack = f"{name}\n{template if isinstance(template, str) else ''}".lower()
    return "instruct" if any(marker in haystack for marker in INSTRUCT_MARKERS) else "tech_assistant"
