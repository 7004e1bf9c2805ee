"""The model card (README.md) of an exported bundle, from the run's own records."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["write_model_card"]


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _verdict(state: dict, evaluation: dict | None) -> str:
    """One honest sentence on what to expect, from the run's size and its evaluation."""
    size = f"{state.get('parameters', 0) / 1e6:.1f}M parameters, {state.get('tokens', 0) / 1e6:.1f}M training tokens"
    em = (evaluation or {}).get("fim_exact_match_heldout", {}).get("exact_match")
    if em is None:
        return f"It is small ({size}): expect plausible local completions, not reasoning."
    if em < 0.3:
        return (
            f"It is small and under-trained ({size}): its completions look like Python but are rarely right "
            f"({em:.1%} single-line FIM exact match on held-out files, see Evaluation). It exists so that the "
            "product works without the network and the fast tests have a trained model, and as the starting "
            "point for more training (`--resume-from models/stackcoder-mini`)."
        )
    return f"It is small ({size}; {em:.1%} single-line FIM exact match on held-out files): expect plausible local completions, not reasoning."


def write_model_card(
    bundle: str | Path,
    *,
    corpus: str | Path | None = None,
    tokenizer: str | Path | None = None,
    commands: list[str] | None = None,
    samples: list[dict] | None = None,
    notes: list[str] | None = None,
) -> Path:
    """Render README.md in the bundle from train_state.json, eval.json, the data card and the tokenizer summary."""
    from training.evaluate import results_table

    bundle = Path(bundle)
    state = _load(bundle / "train_state.json") or {}
    evaluation = _load(bundle / "eval.json")
    card = _load(Path(corpus) / "data_card.json") if corpus else None
    tok = _load(Path(tokenizer) / "tokenizer_summary.json") if tokenizer else None
    cfg, model = state.get("config", {}), state.get("model", {})
    held = [h for h in state.get("history", []) if "heldout_loss" in h]
    rates = [h["tokens_per_s"] for h in state.get("history", []) if "tokens_per_s" in h]
    lines = [
        f"# {bundle.name}",
        "",
        "The model stackcoder trained itself, and its offline fallback when the default real model "
        "(Qwen2.5-Coder-1.5B-Instruct, [card](../qwen2.5-coder/README.md)) is not pulled: a small GPTBigCode (StarCoder architecture, multi-query attention) "
        "code model pretrained from scratch with fill-in-the-middle on permissively licensed Python, by "
        f"`stackcoder train` on a CPU. {_verdict(state, evaluation)}",
        "",
        "## Files",
        "",
        "| file | what |",
        "|---|---|",
        "| `stackcoder.json` | manifest read by the engine |",
        "| `hf/` | Hugging Face checkpoint (safetensors) and tokenizer; the engine runs cold prompts from it "
        "on CPUs with bfloat16 matrix instructions |",
        "| `ct2-int8/` | CTranslate2 int8 conversion: the engine's main backend |",
        "| `train_state.json` | step, tokens seen, data position, loss history: pretraining continues from here |",
        "| `loss.png`, `eval.png`, `eval.json` | loss curve and evaluation |",
        "",
        "## Model",
        "",
        "| hyper-parameter | value |",
        "|---|---|",
        f"| parameters | {state.get('parameters', 0):,} |",
    ]
    lines += [f"| model.{k} | {v} |" for k, v in model.items()]
    lines += [
        f"| train.{k} | {v} |"
        for k, v in cfg.items()
        if k not in ("corpus", "tokenizer", "out", "resume_from")
    ]
    lines += [
        "",
        "## Training",
        "",
        f"Steps: {state.get('step', 0):,}; tokens seen: {state.get('tokens', 0):,} "
        f"(FIM rate {cfg.get('fim_rate')}, SPM rate {cfg.get('spm_rate')}, packed with `<|endoftext|>` between files).",
    ]
    if rates:
        lines.append(
            f"Median throughput: {sorted(rates)[len(rates) // 2]:,.0f} tokens/s on a shared 2-core CPU "
            f"({cfg.get('threads')} torch thread(s), bf16 autocast={cfg.get('bf16')})."
        )
    if held:
        last = held[-1]
        lines.append(
            f"Last held-out loss during training: {last['heldout_loss']:.3f} nats/token "
            f"({last['heldout_bpb']:.3f} bits/byte) at step {last['step']}."
        )
    lines += ["", "![loss curve](loss.png)", ""]
    for note in notes or []:
        lines += [note, ""]
    if evaluation:
        lines += ["## Evaluation", "", results_table(evaluation), "", "![evaluation](eval.png)", ""]
        examples = evaluation.get("fim_exact_match_heldout", {}).get("examples", [])
        if examples:
            lines += ["Held-out single-line FIM examples (masked line → completion):", ""]
            for ex in examples:
                lines.append(
                    f"- `{ex['source']}`: `{ex['target']}` → `{ex['completion']}` "
                    f"({'match' if ex['match'] else 'miss'})"
                )
            lines.append("")
    if samples:
        lines += [
            "## Completions with the engine",
            "",
            f"Greedy, at most 24 new tokens, the engine's default backend ({samples[0].get('backend', 'ct2')}); "
            "the completion is between ⟨ ⟩, then the suffix.",
            "",
        ]
        for s in samples:
            lines += [
                "```python",
                s["prompt"] + "⟨" + s["completion"] + "⟩" + s.get("suffix", ""),
                "```",
                f"({s.get('latency_ms', 0):.0f} ms)",
                "",
            ]
    if tok:
        lines += [
            "## Tokenizer",
            "",
            f"Byte-level BPE, {tok['vocab_size']} tokens including StarCoder's special tokens "
            f"(`<|endoftext|>`, `<fim_prefix>`, `<fim_middle>`, `<fim_suffix>`, `<fim_pad>`, `<file_sep>`, "
            f"`<repo_name>`, ...), digits split; {tok['heldout_bytes_per_token']} bytes/token on held-out files.",
            "",
        ]
    if card:
        c = card["counts"]
        lines += [
            "## Data",
            "",
            f"{c['kept']:,} Python files ({sum(c['split_bytes'].values()) / 1e6:.0f} MB) from {len(card['repositories'])} "
            "repositories: the Python standard library and packages fetched from PyPI "
            "(`training/data/pypi_packages.txt`), kept only under permissive licenses, filtered with BigCode's "
            "quality filters, near-deduplicated with MinHash LSH (5-gram shingles, 256 permutations, Jaccard 0.7), "
            "PII-redacted (detect-secrets, e-mail and IP patterns) and decontaminated against HumanEval. "
            f"Held-out repositories (never trained on): {', '.join(sorted(r for r, i in card['repositories'].items() if i.get('split') == 'heldout'))}.",
            "",
            f"Ingested {c['ingested']:,}; dropped by license {sum(c['dropped']['license'].values()):,}, quality "
            f"{sum(c['dropped']['quality'].values()):,}, decontamination {sum(c['dropped']['decontamination'].values()):,}; "
            f"near-duplicates removed {c['near_duplicates_removed']:,}; PII redactions "
            f"{', '.join(f'{k} {v}' for k, v in sorted(c['pii_redactions'].items()))}.",
            "",
            "| license | repositories |",
            "|---|---:|",
        ]
        lines += [f"| {k} | {v} |" for k, v in sorted(card["licenses"].items(), key=lambda kv: -kv[1])]
        lines += ["", "| repository (package-version) | license | split | files kept |", "|---|---|---|---:|"]
        lines += [
            f"| {r} | {i['license']} | {i.get('split', '-')} | {i['kept']} |"
            for r, i in sorted(card["repositories"].items())
            if i["kept"]
        ]
        lines.append("")
    if commands:
        lines += [
            "## Reproduce",
            "",
            "```sh",
            *commands,
            "```",
            "",
            "Re-running the pretrain command continues from the run folder, or from this bundle "
            "(`--resume-from`) when the run folder is gone: weights, step, tokens and data position are "
            "restored; the AdamW moments are not shipped and restart from zero.",
            "",
        ]
    lines += [
        "## License",
        "",
        "The weights are released under Apache-2.0; the training data's licenses are listed above.",
        "",
    ]
    path = bundle / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
