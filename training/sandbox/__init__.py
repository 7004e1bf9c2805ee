"""Execution sandbox for model-written code: one isolated, resource-limited process per program.

>>> from training.sandbox import Sandbox
>>> result = Sandbox().run("assert 1 + 1 == 2")
>>> result.status, result.isolation
('passed', 'bwrap')
"""

from training.sandbox.errors import SandboxError
from training.sandbox.isolation import ISOLATIONS
from training.sandbox.limits import Limits
from training.sandbox.result import STATUSES, ExecutionResult
from training.sandbox.runner import Sandbox

__all__ = ["Sandbox", "Limits", "ExecutionResult", "STATUSES", "ISOLATIONS", "SandboxError"]
