"""Sub-commands of `stackcoder` provided by `engine`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from engine.backends import AUTO_HELP, BACKENDS, LOCAL_BACKENDS
from engine.cli_models import register_models
from engine.cpu import instruction_sets

if TYPE_CHECKING:
    from engine.types import Completion


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's sub-commands to the `stackcoder` parser."""
    register_convert(subparsers)
    register_complete(subparsers)
    register_serve_openai(subparsers)
    register_models(subparsers)


QUANTIZATION_CHOICES = (
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)


def register_convert(subparsers: argparse._SubParsersAction) -> None:
    """Add `stackcoder convert`: a Hugging Face checkpoint to a CTranslate2 folder."""
    parser = subparsers.add_parser(
        "convert",
        help="convert a Hugging Face checkpoint (GPTBigCode or Starcoder2) to CTranslate2",
        description=(
            "Convert a local Hugging Face checkpoint folder (StarCoder, SantaCoder, tiny_starcoder_py, "
            "StarCoder2...) to a CTranslate2 folder the engine loads with --backend ct2. The folder is "
            "written under a temporary name and renamed when complete, so an interrupted conversion "
            "never looks valid. Models are also converted automatically (and cached) on first use."
        ),
    )
    parser.add_argument("hf_dir", metavar="HF_DIR", help="Hugging Face checkpoint folder")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write (must not exist unless --force)")
    parser.add_argument(
        "--quantization",
        default=None,
        choices=QUANTIZATION_CHOICES,
        help="weight type (default: int8 on CPU; int8_float16 when --device cuda)",
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="device the default targets")
    parser.add_argument("--force", action="store_true", help="overwrite OUT_DIR if it exists")
    parser.set_defaults(handler=_convert)


def _convert(args: argparse.Namespace) -> int:
    from engine.convert import convert_checkpoint, default_quantization

    quantization = args.quantization or default_quantization(args.device)
    out = convert_checkpoint(args.hf_dir, args.out_dir, quantization=quantization, force=args.force)
    print(f"converted {args.hf_dir} -> {out} ({quantization})")
    return 0


def register_complete(subparsers: argparse._SubParsersAction) -> None:
    """Add `stackcoder complete`: one fill-in-the-middle completion at a position in a file."""
    parser = subparsers.add_parser(
        "complete",
        help="print the completion the model proposes at a position in a file",
        description=(
            "Run one fill-in-the-middle completion at a 0-based LINE and COLUMN of FILE (the text "
            "before the position is the prefix, the rest the suffix) and print it. With --json, print "
            '{"text", "model", "latency_ms", "attribution"}, where attribution is the provenance '
            "report of the completion against --index (null without one)."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="source file to complete in")
    parser.add_argument("--line", type=int, required=True, help="0-based line of the cursor")
    parser.add_argument("--column", type=int, required=True, help="0-based column (characters) of the cursor")
    parser.add_argument(
        "--model",
        default=None,
        help="catalog name, model path or server URL (default: $STACKCODER_MODEL, else the catalog's "
        "default model when pulled, else the embedded model)",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help=f"inference backend (default: {AUTO_HELP}; this CPU: {instruction_sets()})",
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    parser.add_argument(
        "--max-new-tokens", type=int, default=64, help="tokens generated at most (default: 64)"
    )
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    parser.add_argument(
        "--mode", default="auto", choices=("auto", "single", "multi"), help="single- or multi-line completion"
    )
    parser.add_argument(
        "--index", default=None, metavar="DIR", help="attribution index to check the completion against"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    parser.set_defaults(handler=_complete)


def split_at(text: str, line: int, column: int, where: str = "the file") -> tuple[str, str]:
    """Split ``text`` at a 0-based (line, column); raise ValueError naming the valid range."""
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        raise ValueError(f"--line {line} is outside {where}, which has lines 0 to {len(lines) - 1}")
    if not 0 <= column <= len(lines[line]):
        raise ValueError(
            f"--column {column} is outside line {line}, which has columns 0 to {len(lines[line])}"
        )
    offset = sum(len(part) + 1 for part in lines[:line]) + column
    return text[:offset], text[offset:]


def _complete(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from engine import load_model

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SystemExit(f"stackcoder: error: {path} is not UTF-8 text; give a source file.") from None
    try:
        prefix, suffix = split_at(text, args.line, args.column, str(path))
    except ValueError as exc:
        raise SystemExit(f"stackcoder: error: {exc}.") from None
    if args.max_new_tokens < 1:
        raise SystemExit("stackcoder: error: --max-new-tokens must be at least 1.")
    model = load_model(args.model, backend=args.backend, threads=args.threads)
    try:
        completion = model.complete(
            prefix,
            suffix,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            mode=args.mode,
            path=path.name,
        )
    finally:
        model.close()
    attribution = None
    if args.index:
        from attribution import Index

        attribution = Index.open(args.index).query(completion.text).to_dict()
    if args.json:
        payload = {
            "text": completion.text,
            "model": completion.model,
            "latency_ms": round(completion.latency_ms, 1),
            "attribution": attribution,
        }
        print(json.dumps(payload))
    elif completion.text:
        print(completion.text)
    else:
        print(_nothing_suggested(completion, args), file=sys.stderr)
    return 0


def _nothing_suggested(completion: Completion, args: argparse.Namespace) -> str:
    """Why a completion came back empty, and what to try."""
    where = f"at line {args.line}, column {args.column}"
    if completion.raw.strip():
        shown = completion.raw if len(completion.raw) <= 80 else completion.raw[:77] + "..."
        why = f"post-processing dropped its output {shown!r} (a loop, a repeat of the text after the cursor, or noise)"
    else:
        why = "it ended its output at once"
    return (
        f"stackcoder: no suggestion {where}: {why}. "
        "Try another position, --mode multi, or sampling with --temperature 0.2."
    )


def register_serve_openai(subparsers: argparse._SubParsersAction) -> None:
    """Add `stackcoder serve-openai`: the engine behind an OpenAI-compatible HTTP API."""
    parser = subparsers.add_parser(
        "serve-openai",
        help="serve the model through an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions)",
        description=(
            "Serve a model through an OpenAI-compatible HTTP API: POST /v1/completions (streaming, "
            "'suffix' for fill-in-the-middle), POST /v1/chat/completions and GET /v1/models. Other "
            "machines can then use it with `--backend http --model http://HOST:PORT/v1`. The server "
            "listens on 127.0.0.1 by default and refuses any other address without a token."
        ),
    )
    parser.add_argument(
        "--model",
        default=None,
        help="catalog name or model path (default: $STACKCODER_MODEL, else the catalog's default model "
        "when pulled, else the embedded model)",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=LOCAL_BACKENDS,
        help=f"inference backend (default: {AUTO_HELP}; this CPU: {instruction_sets()})",
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for inference (0 = all cores)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--token",
        default=None,
        help="bearer token clients must send (default: $STACKCODER_API_KEY); required off loopback",
    )
    parser.add_argument(
        "--max-concurrency", type=_positive, default=1, help="generations run at the same time (default: 1)"
    )
    parser.set_defaults(handler=_serve_openai)


def _port(value: str) -> int:
    port = int(value) if value.isdigit() else -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number; give one from 1 to 65535")
    return port


def _positive(value: str) -> int:
    number = int(value) if value.isdigit() else 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


def _serve_openai(args: argparse.Namespace) -> int:
    import os

    from engine.openai_server import check_bind, serve

    token = args.token or os.environ.get("STACKCODER_API_KEY") or None
    check_bind(args.host, token)  # before the model loads, so a refusal is instant

    from engine import load_model

    model = load_model(args.model, backend=args.backend, threads=args.threads)
    try:
        serve(model, host=args.host, port=args.port, token=token, max_concurrency=args.max_concurrency)
    finally:
        model.close()
    return 0
