"""Near-dedup merges planted near-duplicates, keeps distinct files, and keeps the stated file."""

from __future__ import annotations

from helpers.training_corpus import stdlib_files

from training.dedup import DedupConfig, band_keys, cluster_keep, lsh_bands, near_duplicate_edges, signature


def test_near_duplicates_are_linked_and_distinct_files_are_not() -> None:
    cfg = DedupConfig()
    texts = [p.read_text(encoding="utf-8") for p in stdlib_files(12)]
    renamed = texts[0].replace("\n\n\n", "\n\n\n# a comment added by the copier\n", 2) + "\nEXTRA = 1\n"
    sigs = [signature(t, cfg) for t in [*texts, renamed]]
    edges = near_duplicate_edges(sigs, cfg)
    assert (0, len(texts)) in edges
    assert all(b == len(texts) for _, b in edges), edges
    keep, clusters = cluster_keep(
        len(sigs), edges, [len(t) for t in [*texts, renamed]], [("r", str(i)) for i in range(len(sigs))]
    )
    assert clusters == 1
    # The longest file of the cluster (the copy with additions) is the one kept.
    assert keep[len(texts)] and not keep[0] and all(keep[1 : len(texts)])


def test_band_keys_match_datasketch_parameters() -> None:
    cfg = DedupConfig()
    bands, rows = lsh_bands(cfg)
    assert bands * rows <= cfg.num_perm
    sig = signature("def f(x):\n    return x * 2\n", cfg)
    keys = band_keys(sig, bands, rows)
    assert len(keys) == bands and len(set(keys)) == bands
