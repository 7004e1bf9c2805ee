"""The license-fit rule table: which project licenses may take in code copied from a source license.

Data only, read by :mod:`attribution.license_fit`. A guide for review, not legal advice.

``aliases`` maps deprecated or short SPDX ids to the ids the rules use. ``groups`` name sets of
ids (``@name``). Each entry of ``sources`` (an id or a group) says: ``into``, the project licenses
the source's code fits in (``*``: any project, also one without a detected license); ``except``,
project licenses removed from ``into``; ``notice``, whether the source's license asks to keep its
copyright and license notice; ``note``, what else to do.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TABLE"]

TABLE: dict[str, Any] = {
    "aliases": {
        "GPL-2.0": "GPL-2.0-only",
        "GPL-2.0+": "GPL-2.0-or-later",
        "GPL-3.0": "GPL-3.0-only",
        "GPL-3.0+": "GPL-3.0-or-later",
        "LGPL-2.0": "LGPL-2.0-only",
        "LGPL-2.0+": "LGPL-2.0-or-later",
        "LGPL-2.1": "LGPL-2.1-only",
        "LGPL-2.1+": "LGPL-2.1-or-later",
        "LGPL-3.0": "LGPL-3.0-only",
        "LGPL-3.0+": "LGPL-3.0-or-later",
        "AGPL-3.0": "AGPL-3.0-only",
        "AGPL-3.0+": "AGPL-3.0-or-later",
        "X11": "MIT",
        "Expat": "MIT",
    },
    "groups": {
        "@public-domain": ["CC0-1.0", "Unlicense", "0BSD", "MIT-0", "WTFPL", "BSD-1-Clause"],
        "@permissive": [
            "MIT",
            "BSD-2-Clause",
            "BSD-3-Clause",
            "BSD-3-Clause-Clear",
            "ISC",
            "PSF-2.0",
            "Python-2.0",
            "Zlib",
            "BSL-1.0",
            "NCSA",
            "PostgreSQL",
            "UPL-1.0",
            "MIT-CMU",
            "HPND",
            "curl",
            "Libpng",
            "BlueOak-1.0.0",
            "Unicode-DFS-2016",
            "CC-BY-3.0",
            "CC-BY-4.0",
            "Artistic-2.0",
            "AFL-2.1",
            "AFL-3.0",
            "W3C",
            "JSON",
            "Vim",
            "Beerware",
            "FTL",
        ],
        "@permissive-extra": ["X11-distribute-modifications-variant"],
        "@advertising": ["BSD-4-Clause", "OpenSSL", "Apache-1.1", "PHP-3.01"],
        "@apache": ["Apache-2.0", "ECL-2.0"],
        "@gpl2-only": ["GPL-2.0-only"],
        "@gpl2-plus": ["GPL-2.0-or-later"],
        "@gpl3": ["GPL-3.0-only", "GPL-3.0-or-later"],
        "@agpl3": ["AGPL-3.0-only", "AGPL-3.0-or-later"],
        "@lgpl2": ["LGPL-2.0-only", "LGPL-2.0-or-later", "LGPL-2.1-only", "LGPL-2.1-or-later"],
        "@lgpl3": ["LGPL-3.0-only", "LGPL-3.0-or-later"],
        "@file-copyleft": ["MPL-2.0", "EPL-2.0", "EPL-1.0", "CDDL-1.0", "MPL-1.1"],
    },
    "sources": {
        "@public-domain": {"into": ["*"], "notice": False},
        "@permissive": {"into": ["*"], "notice": True},
        "@permissive-extra": {"into": ["*"], "notice": True},
        "@advertising": {
            "into": ["*"],
            "except": ["@gpl2-only", "@gpl2-plus", "@gpl3", "@agpl3", "@lgpl2", "@lgpl3"],
            "notice": True,
            "note": "keep its advertising clause",
        },
        "MS-PL": {
            "into": ["*"],
            "except": ["@gpl2-only", "@gpl2-plus", "@gpl3", "@agpl3", "@lgpl2", "@lgpl3"],
            "notice": True,
            "note": "code shared as source stays under MS-PL",
        },
        "@apache": {
            "into": ["*"],
            "except": ["@gpl2-only", "@lgpl2"],
            "notice": True,
            "note": "keep its NOTICE file's attributions",
        },
        "@gpl2-only": {"into": ["@gpl2-only", "@gpl2-plus"], "notice": True},
        "@gpl2-plus": {"into": ["@gpl2-only", "@gpl2-plus", "@gpl3", "@agpl3"], "notice": True},
        "@gpl3": {"into": ["@gpl3", "@agpl3"], "notice": True},
        "@agpl3": {"into": ["@agpl3"], "notice": True},
        "LGPL-2.0-only": {"into": ["@lgpl2", "@gpl2-only", "@gpl2-plus"], "notice": True},
        "LGPL-2.0-or-later": {
            "into": ["@lgpl2", "@lgpl3", "@gpl2-only", "@gpl2-plus", "@gpl3", "@agpl3"],
            "notice": True,
        },
        "LGPL-2.1-only": {"into": ["@lgpl2", "@gpl2-only", "@gpl2-plus", "@gpl3", "@agpl3"], "notice": True},
        "LGPL-2.1-or-later": {
            "into": ["@lgpl2", "@lgpl3", "@gpl2-only", "@gpl2-plus", "@gpl3", "@agpl3"],
            "notice": True,
        },
        "@lgpl3": {"into": ["@lgpl3", "@gpl3", "@agpl3"], "notice": True},
        "MPL-2.0": {
            "into": ["*"],
            "notice": True,
            "note": "file-level copyleft: keep the copied code in its own file under MPL-2.0",
        },
        "MPL-1.1": {
            "into": ["*"],
            "except": ["@gpl2-only", "@gpl2-plus", "@gpl3", "@agpl3", "@lgpl2", "@lgpl3"],
            "notice": True,
            "note": "file-level copyleft: keep the copied code in its own file under MPL-1.1",
        },
        "EPL-2.0": {
            "into": ["*"],
            "except": ["@gpl2-only", "@gpl2-plus", "@gpl3", "@agpl3", "@lgpl2", "@lgpl3"],
            "notice": True,
            "note": "file-level copyleft: keep the copied code in its own file under EPL-2.0",
        },
        "EPL-1.0": {
            "into": ["*"],
            "except": ["@gpl2-only", "@gpl2-plus", "@gpl3", "@agpl3", "@lgpl2", "@lgpl3"],
            "notice": True,
            "note": "file-level copyleft: keep the copied code in its own file under EPL-1.0",
        },
        "CDDL-1.0": {
            "into": ["*"],
            "except": ["@gpl2-only", "@gpl2-plus", "@gpl3", "@agpl3", "@lgpl2", "@lgpl3"],
            "notice": True,
            "note": "file-level copyleft: keep the copied code in its own file under CDDL-1.0",
        },
        "EUPL-1.2": {
            "into": [
                "EUPL-1.2",
                "@gpl2-only",
                "@gpl2-plus",
                "@gpl3",
                "@agpl3",
                "MPL-2.0",
                "EPL-1.0",
                "@lgpl2",
                "@lgpl3",
            ],
            "notice": True,
        },
        "OSL-3.0": {"into": ["OSL-3.0"], "notice": True},
        "CC-BY-SA-4.0": {"into": ["CC-BY-SA-4.0", "@gpl3"], "notice": True},
        "CC-BY-NC-4.0": {"into": ["CC-BY-NC-4.0"], "notice": True, "note": "non-commercial use only"},
    },
}
