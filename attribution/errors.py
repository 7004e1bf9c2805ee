"""The attribution package's error hierarchy: each message is one sentence saying what is wrong and what to do."""

from __future__ import annotations

__all__ = [
    "AttributionError",
    "SourceError",
    "IndexNotFoundError",
    "CorruptIndexError",
    "IndexVersionError",
    "IndexExistsError",
    "QueryError",
    "StorageConfigError",
]


class AttributionError(Exception):
    """Base class of every error the attribution package raises on purpose."""


class SourceError(AttributionError):
    """A SOURCE argument is missing, of an unknown kind, or not in the expected schema."""


class IndexNotFoundError(AttributionError):
    """The index folder does not exist or holds no index."""


class CorruptIndexError(AttributionError):
    """The index folder is partial, truncated or inconsistent."""


class IndexVersionError(AttributionError):
    """The index was written in another format version."""


class IndexExistsError(AttributionError):
    """The output folder already holds something that is not an index of this format."""


class QueryError(AttributionError):
    """The query text cannot be checked (binary, too large)."""


class StorageConfigError(AttributionError):
    """An LSH storage configuration names an unknown type or misses a field."""
