"""`stackcoder train <stage>`: one sub-command per training stage."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `stackcoder train` and its stages to the `stackcoder` parser."""
    from training import cli_adapt, cli_align, cli_pretrain

    train = subparsers.add_parser(
        "train",
        help="build the corpus, train the tokenizer and model, align and evaluate it",
        description="Training stages of the model stackcoder runs; each stage is resumable.",
    )
    stages = train.add_subparsers(dest="stage", metavar="STAGE")
    # corpus, tokenizer, pretrain, eval, export
    cli_pretrain.register_stages(stages)
    # self-instruct, sft, humaneval
    cli_align.register_stages(stages)
    # adapt (LoRA on a real model)
    cli_adapt.register_stages(stages)
    train.set_defaults(handler=lambda args: train.print_help() or 2)
