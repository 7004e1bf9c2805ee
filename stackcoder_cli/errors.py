"""Map the packages' error hierarchies to one sentence for the terminal."""

from __future__ import annotations


def user_message(exc: BaseException) -> str | None:
    """Return the user-facing message of a known product error, or None for a bug."""
    known: list[type[BaseException]] = []
    for module_name, class_name in (
        ("engine.errors", "EngineError"),
        ("attribution.errors", "AttributionError"),
        ("training.errors", "TrainingError"),
    ):
        try:
            module = __import__(module_name, fromlist=[class_name])
            known.append(getattr(module, class_name))
        except (ImportError, AttributeError):
            continue
    if known and isinstance(exc, tuple(known)):
        return str(exc)
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return str(exc)
    return None
