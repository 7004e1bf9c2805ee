"""The `stackcoder` command line: one console script, one sub-command per product feature."""
