"""License fit: the rule table read as data, verdicts and sentences, expressions on both sides."""

from __future__ import annotations

import pytest

from attribution.license_fit import VERDICTS, canonical, fit, known_licenses
from attribution.license_table import TABLE
from attribution.licenses import PERMISSIVE_LICENSES

# (source, project, verdict): the cases users ask about most.
CASES = [
    ("GPL-3.0", "MIT", "incompatible"),
    ("GPL-3.0-only", "GPL-3.0-or-later", "compatible"),
    ("GPL-2.0-only", "GPL-3.0", "incompatible"),
    ("GPL-2.0-or-later", "GPL-3.0", "compatible"),
    ("AGPL-3.0", "GPL-3.0", "incompatible"),
    ("GPL-3.0", "AGPL-3.0", "compatible"),
    ("LGPL-2.1", "MIT", "incompatible"),
    ("LGPL-2.1", "GPL-2.0", "compatible"),
    ("MIT", "GPL-3.0", "compatible"),
    ("MIT", "unknown", "compatible"),
    ("PSF-2.0", "Apache-2.0", "compatible"),
    ("Apache-2.0", "GPL-2.0-only", "incompatible"),
    ("Apache-2.0", "GPL-3.0-only", "compatible"),
    ("MPL-2.0", "MIT", "compatible"),
    ("EPL-2.0", "GPL-3.0", "incompatible"),
    ("CC-BY-NC-4.0", "MIT", "incompatible"),
    ("CC-BY-SA-4.0", "GPL-3.0", "compatible"),
    ("GPL-3.0", "unknown", "unknown"),
    ("unknown", "MIT", "unknown"),
    ("Some-Custom-1.0", "MIT", "unknown"),
    ("MIT", "Some-Custom-1.0", "unknown"),
    # expressions: any alternative of the source; every alternative of the project
    ("MIT OR GPL-3.0", "MIT", "compatible"),
    ("MIT AND GPL-3.0", "MIT", "incompatible"),
    ("GPL-2.0-or-later WITH Classpath-exception-2.0", "GPL-3.0", "compatible"),
    ("GPL-3.0", "MIT OR GPL-3.0", "incompatible"),
    ("MIT", "MIT OR Apache-2.0", "compatible"),
]


@pytest.mark.parametrize(("source", "project", "verdict"), CASES)
def test_verdicts_follow_the_table(source: str, project: str, verdict: str) -> None:
    assert fit(source, project).verdict == verdict


def test_the_sentence_users_read() -> None:
    assert fit("GPL-3.0", "MIT").sentence == "GPL-3.0 source in an MIT project: incompatible"
    assert fit("BSD-3-Clause", "GPL-3.0").sentence == (
        "BSD-3-Clause source in a GPL-3.0 project: compatible (keep its license notice)"
    )
    assert fit("CC0-1.0", "MIT").sentence == "CC0-1.0 source in an MIT project: compatible"
    assert "own file under MPL-2.0" in fit("MPL-2.0", "MIT").sentence
    assert fit("GPL-3.0", None).sentence.startswith("GPL-3.0 source in a project without a detected license")
    assert fit("unknown", "MIT").to_dict()["verdict"] == "unknown"


def test_every_license_the_detector_names_permissive_has_a_rule() -> None:
    # a source the detector calls permissive must never come out "unknown" in any project
    missing = [spdx for spdx in PERMISSIVE_LICENSES if canonical(spdx) is None]
    assert not missing, missing
    assert all(fit(spdx, "GPL-3.0").verdict in ("compatible", "incompatible") for spdx in PERMISSIVE_LICENSES)


def test_table_is_consistent_data() -> None:
    assert set(TABLE) == {"aliases", "groups", "sources"}
    for name, rule in TABLE["sources"].items():
        assert set(rule) <= {"into", "except", "notice", "note"}, name
        for ref in [name, *rule["into"], *rule.get("except", [])]:
            assert ref == "*" or not ref.startswith("@") or ref in TABLE["groups"], (name, ref)
    for alias, target in TABLE["aliases"].items():
        assert canonical(alias) == target
    assert "GPL-3.0-only" in known_licenses()
    assert set(VERDICTS) == {"compatible", "incompatible", "unknown"}


def test_every_license_fits_itself() -> None:
    for spdx in known_licenses():
        assert fit(spdx, spdx).verdict == "compatible", spdx
