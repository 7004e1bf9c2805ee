"""What the server has loaded and how fast it answers (`stackcoder/status`)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.cpu import instruction_sets

__all__ = ["LatencyWindow", "ComponentState", "ServerStatus"]


class LatencyWindow:
    """The last ``size`` latencies of inline completions, with percentiles."""

    def __init__(self, size: int = 500) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._count = 0
        self._lock = threading.Lock()

    def add(self, ms: float) -> None:
        """Record one latency in milliseconds."""
        with self._lock:
            self._values.append(float(ms))
            self._count += 1

    def summary(self) -> dict[str, float | int | None]:
        """{p50, p95, last, count} over the window (None when empty)."""
        with self._lock:
            values = list(self._values)
            count = self._count
        if not values:
            return {"p50": None, "p95": None, "last": None, "count": 0}
        arr = np.asarray(values)
        return {
            "p50": round(float(np.percentile(arr, 50)), 2),
            "p95": round(float(np.percentile(arr, 95)), 2),
            "last": round(values[-1], 2),
            "count": count,
        }


@dataclass
class ComponentState:
    """A loadable part (model or index): where it comes from, whether it is loaded, why not."""

    path: str | None = None
    loaded: bool = False
    error: str | None = None
    name: str | None = None
    backend: str | None = None
    fallback: str | None = None  # why a fallback was loaded instead of the default
    chat: str | None = None  # the model chat and explain run on, once loaded (models only)


@dataclass
class ServerStatus:
    """Everything `stackcoder/status` reports."""

    version: str
    model: ComponentState = field(default_factory=ComponentState)
    index: ComponentState = field(default_factory=ComponentState)
    latency: LatencyWindow = field(default_factory=LatencyWindow)
    stages: dict[str, LatencyWindow] = field(default_factory=dict)  # retrieval / generate / provenance
    shown: int = 0
    accepted: int = 0

    def add_stages(self, timings_ms: dict[str, float]) -> None:
        """Record the time of each stage of one completion."""
        for name, ms in timings_ms.items():
            self.stages.setdefault(name, LatencyWindow()).add(ms)

    def to_json(self) -> dict[str, Any]:
        """The `stackcoder/status` result."""
        return {
            "model": {
                "name": self.model.name,
                "path": self.model.path,
                "backend": self.model.backend,
                "loaded": self.model.loaded,
                "error": self.model.error,
                "fallback": self.model.fallback,
                "chat": self.model.chat,
            },
            "index": {"path": self.index.path, "loaded": self.index.loaded, "error": self.index.error},
            "latency_ms": self.latency.summary(),
            "completions": {"shown": self.shown, "accepted": self.accepted},
            "stages_ms": {name: window.summary() for name, window in self.stages.items()},
            "version": self.version,
            "cpu": instruction_sets(),  # what the engines' kernels can use on this machine
        }
