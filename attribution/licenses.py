"""License detection for source repositories, as SPDX identifiers.

A repository's license comes from, in order: its license files (LICENSE, COPYING, NOTICE, ...),
package metadata (``METADATA``/``PKG-INFO`` of a wheel or sdist, ``pyproject.toml``,
``setup.cfg``, ``package.json``) and finally ``SPDX-License-Identifier`` headers in its sources.
Texts are recognised by phrases that each license's text always contains; short names and
trove classifiers through a table of aliases. ``is_permissive`` follows The Stack's notion of
a permissive license (the families it kept: MIT, BSD, Apache, ISC, PSF, public-domain
dedications and similar).
"""

from __future__ import annotations

import configparser
import email.parser
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import tomllib

__all__ = ["detect_license", "license_from_text", "is_permissive", "PERMISSIVE_LICENSES", "UNKNOWN"]

UNKNOWN = "unknown"

# Licenses The Stack counts as permissive (SPDX ids).
PERMISSIVE_LICENSES = frozenset(
    {
        "MIT",
        "MIT-0",
        "X11",
        "Apache-2.0",
        "Apache-1.1",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "BSD-3-Clause-Clear",
        "BSD-4-Clause",
        "0BSD",
        "BSD-1-Clause",
        "ISC",
        "PSF-2.0",
        "Python-2.0",
        "Unlicense",
        "CC0-1.0",
        "CC-BY-4.0",
        "CC-BY-3.0",
        "BSL-1.0",
        "Zlib",
        "WTFPL",
        "AFL-3.0",
        "AFL-2.1",
        "Artistic-2.0",
        "NCSA",
        "PostgreSQL",
        "UPL-1.0",
        "ECL-2.0",
        "MS-PL",
        "OpenSSL",
        "Libpng",
        "curl",
        "HPND",
        "BlueOak-1.0.0",
        "Unicode-DFS-2016",
        "MIT-CMU",
        "FTL",
        "JSON",
        "Vim",
        "Beerware",
        "PHP-3.01",
        "W3C",
        "X11-distribute-modifications-variant",
    }
)

# Phrases found in full license texts, checked in order (more specific first): (SPDX id, all of
# these regexes must match, none of these may match).
_TEXT_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("AGPL-3.0", (r"GNU AFFERO GENERAL PUBLIC LICENSE",), ()),
    ("LGPL-3.0", (r"GNU LESSER GENERAL PUBLIC LICENSE", r"Version 3"), ()),
    ("LGPL-2.1", (r"GNU LESSER GENERAL PUBLIC LICENSE", r"Version 2\.1"), ()),
    ("LGPL-2.0", (r"GNU LIBRARY GENERAL PUBLIC LICENSE",), ()),
    ("GPL-3.0", (r"GNU GENERAL PUBLIC LICENSE", r"Version 3"), ()),
    ("GPL-2.0", (r"GNU GENERAL PUBLIC LICENSE", r"Version 2"), ()),
    ("MPL-2.0", (r"Mozilla Public License,? (?:Version|v\.?) ?2\.0",), ()),
    ("MPL-1.1", (r"Mozilla Public License,? (?:Version|v\.?) ?1\.1",), ()),
    ("EPL-2.0", (r"Eclipse Public License(?: -)? v(?:ersion)? ?2\.0",), ()),
    ("EPL-1.0", (r"Eclipse Public License(?: -)? v(?:ersion)? ?1\.0",), ()),
    ("PSF-2.0", (r"PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2",), ()),
    ("Apache-2.0", (r"Apache License", r"Version 2\.0"), ()),
    ("Apache-2.0", (r"Licensed under the Apache License, Version 2\.0",), ()),
    ("MIT-0", (r"Permission is hereby granted, free of charge",), (r"above copyright notice",)),
    ("MIT", (r"Permission is hereby granted, free of charge", r"above copyright notice"), ()),
    ("BSD-4-Clause", (r"Redistribution and use in source and binary forms", r"advertising materials"), ()),
    (
        "BSD-3-Clause",
        (
            r"Redistribution and use in source and binary forms",
            r"(?:Neither the name|names of its\s+contributors)",
        ),
        (),
    ),
    ("BSD-2-Clause", (r"Redistribution and use in source and binary forms",), ()),
    (
        "ISC",
        (r"Permission to use, copy, modify, and(?:/or)? distribute this software for any\s+purpose",),
        (),
    ),
    ("Unlicense", (r"This is free and unencumbered software released into the public domain",), ()),
    ("CC0-1.0", (r"CC0 1\.0 Universal",), ()),
    ("BSL-1.0", (r"Boost Software License",), ()),
    ("WTFPL", (r"DO WHAT THE FUCK YOU WANT TO PUBLIC LICENSE",), ()),
    ("Zlib", (r"This software is provided 'as-is', without any express or implied\s+warranty",), ()),
    ("Artistic-2.0", (r"The Artistic License 2\.0",), ()),
    ("UPL-1.0", (r"Universal Permissive License",), ()),
    (
        "MIT-CMU",
        (
            r"Permission to use, copy, modify,? and distribute this software and its\s+documentation for any purpose and without fee is hereby granted",
        ),
        (),
    ),
)
# Patterns written in capitals (the titles of license texts) match case-sensitively, so a
# license that merely mentions "the GNU General Public License" is not taken for the GPL.
_COMPILED_RULES = tuple(
    (
        spdx,
        tuple(re.compile(p, 0 if p.isupper() else re.I) for p in must),
        tuple(re.compile(p, re.I) for p in must_not),
    )
    for spdx, must, must_not in _TEXT_RULES
)
# A license text's phrases lie within this many characters of its first phrase.
_RULE_WINDOW = 3_000

# Short names as written in metadata fields and trove classifiers (lower-cased, punctuation
# collapsed to single spaces) -> SPDX id.
_ALIASES: dict[str, str] = {
    "mit": "MIT",
    "mit license": "MIT",
    "the mit license": "MIT",
    "expat": "MIT",
    "mit 0": "MIT-0",
    "apache": "Apache-2.0",
    "apache 2": "Apache-2.0",
    "apache 2 0": "Apache-2.0",
    "apache license 2 0": "Apache-2.0",
    "apache license version 2 0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "apache software license 2 0": "Apache-2.0",
    "apache license": "Apache-2.0",
    "asl 2 0": "Apache-2.0",
    "apache 2 license": "Apache-2.0",
    "bsd": "BSD-3-Clause",
    "bsd license": "BSD-3-Clause",
    "new bsd": "BSD-3-Clause",
    "new bsd license": "BSD-3-Clause",
    "modified bsd": "BSD-3-Clause",
    "bsd 3 clause": "BSD-3-Clause",
    "3 clause bsd": "BSD-3-Clause",
    "bsd 3": "BSD-3-Clause",
    "simplified bsd": "BSD-2-Clause",
    "bsd 2 clause": "BSD-2-Clause",
    "2 clause bsd": "BSD-2-Clause",
    "freebsd": "BSD-2-Clause",
    "isc": "ISC",
    "isc license": "ISC",
    "isc license iscl": "ISC",
    "iscl": "ISC",
    "psf": "PSF-2.0",
    "psf 2 0": "PSF-2.0",
    "psf license": "PSF-2.0",
    "python software foundation license": "PSF-2.0",
    "python software foundation": "PSF-2.0",
    "python 2 0": "Python-2.0",
    "unlicense": "Unlicense",
    "the unlicense": "Unlicense",
    "the unlicense unlicense": "Unlicense",
    "public domain": "Unlicense",
    "cc0": "CC0-1.0",
    "cc0 1 0": "CC0-1.0",
    "cc0 1 0 universal cc0 1 0 public domain dedication": "CC0-1.0",
    "zlib": "Zlib",
    "zlib libpng license": "Zlib",
    "boost": "BSL-1.0",
    "boost software license 1 0 bsl 1 0": "BSL-1.0",
    "bsl 1 0": "BSL-1.0",
    "wtfpl": "WTFPL",
    "gpl": "GPL-3.0",
    "gplv3": "GPL-3.0",
    "gpl 3": "GPL-3.0",
    "gpl 3 0": "GPL-3.0",
    "gnu general public license v3 gplv3": "GPL-3.0",
    "gnu general public license v2 gplv2": "GPL-2.0",
    "gplv2": "GPL-2.0",
    "gpl 2": "GPL-2.0",
    "gpl 2 0": "GPL-2.0",
    "gnu general public license v3 or later gplv3": "GPL-3.0-or-later",
    "gnu general public license v2 or later gplv2": "GPL-2.0-or-later",
    "lgpl": "LGPL-3.0",
    "lgplv3": "LGPL-3.0",
    "lgpl 3 0": "LGPL-3.0",
    "lgpl 2 1": "LGPL-2.1",
    "gnu lesser general public license v3 lgplv3": "LGPL-3.0",
    "gnu lesser general public license v2 or later lgplv2": "LGPL-2.1-or-later",
    "gnu library or lesser general public license lgpl": "LGPL-2.0",
    "agpl": "AGPL-3.0",
    "agplv3": "AGPL-3.0",
    "gnu affero general public license v3": "AGPL-3.0",
    "mpl": "MPL-2.0",
    "mpl 2 0": "MPL-2.0",
    "mozilla public license 2 0 mpl 2 0": "MPL-2.0",
    "epl": "EPL-2.0",
    "eclipse public license 2 0 epl 2 0": "EPL-2.0",
    "artistic license": "Artistic-2.0",
    "universal permissive license upl": "UPL-1.0",
}

# Canonical spelling of SPDX ids (lower-case -> id) for metadata that already uses them.
_SPDX_IDS = {s.lower(): s for s in PERMISSIVE_LICENSES} | {
    s.lower(): s
    for s in (
        "GPL-2.0",
        "GPL-3.0",
        "GPL-2.0-only",
        "GPL-3.0-only",
        "GPL-2.0-or-later",
        "GPL-3.0-or-later",
        "LGPL-2.0",
        "LGPL-2.1",
        "LGPL-3.0",
        "LGPL-2.1-only",
        "LGPL-3.0-only",
        "LGPL-2.1-or-later",
        "LGPL-3.0-or-later",
        "AGPL-3.0",
        "AGPL-3.0-only",
        "AGPL-3.0-or-later",
        "MPL-1.1",
        "MPL-2.0",
        "EPL-1.0",
        "EPL-2.0",
        "CDDL-1.0",
        "EUPL-1.2",
        "OSL-3.0",
        "CC-BY-SA-4.0",
        "CC-BY-NC-4.0",
    )
}

_SPDX_HEADER_RE = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+\-() ]+?)\s*(?:\*/|-->|$)", re.M)
_CLASSIFIER_PREFIX = "License :: "
_LICENSE_FILE_RE = re.compile(r"^(?:UN)?(?:LICEN[SC]E|COPYING|COPYRIGHT|NOTICE)(?:[._\-].*)?$", re.I)
_METADATA_FILES = ("METADATA", "PKG-INFO")
_SOURCE_SUFFIXES = frozenset(
    {".py", ".js", ".ts", ".c", ".h", ".cc", ".cpp", ".go", ".rs", ".java", ".rb", ".sh"}
)
_MAX_LICENSE_BYTES = 200_000
_MAX_HEADER_FILES = 50


def _squash(name: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", name.lower()).split())


def _license_from_name(name: str) -> str | None:
    """SPDX id of a short license name, SPDX expression or classifier; None if unknown."""
    name = name.strip().strip("\"'")
    if not name:
        return None
    if name.startswith(_CLASSIFIER_PREFIX):
        name = name.split("::")[-1].strip()
    expression = _spdx_expression(name)
    if expression:
        return expression
    return _ALIASES.get(_squash(name))


def _spdx_expression(text: str) -> str | None:
    """Canonicalise an SPDX expression such as ``MIT OR Apache-2.0``; None if any id is unknown."""
    parts = re.split(r"\s+(AND|OR|WITH)\s+", text.strip().strip("()"))
    out: list[str] = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part)
            continue
        part = part.strip("() ")
        canonical = _SPDX_IDS.get(part.lower())
        if canonical is None and (i == 0 or parts[i - 1] != "WITH"):
            return None
        out.append(canonical or part)
    return " ".join(out)


def license_from_text(text: str) -> str | None:
    """SPDX id of a license given as its full text, a short name, a classifier or an SPDX header.

    Returns None when nothing is recognised.
    """
    if not text or not text.strip():
        return None
    stripped = text.strip()
    if len(stripped) <= 200 and "\n" not in stripped:
        by_name = _license_from_name(stripped)
        if by_name:
            return by_name
    header = _SPDX_HEADER_RE.search(text[:_MAX_LICENSE_BYTES])
    if header:
        by_header = _spdx_expression(header.group(1))
        if by_header:
            return by_header
    # Files often append the licenses of bundled code: the license whose text starts first wins.
    sample = text[:_MAX_LICENSE_BYTES]
    best: tuple[int, int, str] | None = None
    for order, (spdx, must, must_not) in enumerate(_COMPILED_RULES):
        anchor = must[0].search(sample)
        if anchor is None or (best is not None and anchor.start() > best[0]):
            continue
        window = sample[anchor.start() : anchor.start() + _RULE_WINDOW]
        if all(p.search(window) for p in must[1:]) and not any(p.search(window) for p in must_not):
            candidate = (anchor.start(), order, spdx)
            best = candidate if best is None else min(best, candidate)
    return best[2] if best else None


def is_permissive(spdx: str) -> bool:
    """Whether a license (an SPDX id or expression) is permissive as The Stack defines it.

    ``A OR B`` is permissive when one alternative is; ``A AND B`` only when both are.
    """
    if not spdx:
        return False
    alternatives = [a.strip("() ") for a in re.split(r"\s+OR\s+", spdx.strip())]
    return any(
        all(part.strip("() ") in PERMISSIVE_LICENSES for part in re.split(r"\s+AND\s+", alt))
        for alt in alternatives
    )


def _read_text(path: Path, limit: int = _MAX_LICENSE_BYTES) -> str:
    try:
        with path.open("rb") as fh:
            return fh.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _from_license_files(directory: Path) -> str | None:
    try:
        entries = sorted(p for p in directory.iterdir() if p.is_file() and _LICENSE_FILE_RE.match(p.name))
    except OSError:
        return None
    # LICENSE before COPYING before NOTICE: the first file that names a license wins.
    entries.sort(key=lambda p: (p.name.upper().startswith("NOTICE"), p.name))
    for path in entries:
        found = license_from_text(_read_text(path))
        if found:
            return found
    return None


def _from_metadata_text(text: str) -> str | None:
    """License of a core-metadata document (wheel METADATA or sdist PKG-INFO)."""
    message = email.parser.Parser().parsestr(text, headersonly=True)
    for field in ("License-Expression", "License"):
        value = message.get(field)
        if value and value.strip().upper() not in ("UNKNOWN", ""):
            found = license_from_text(value)
            if found:
                return found
    return _from_classifiers(message.get_all("Classifier") or [])


def _from_classifiers(classifiers: Iterable[str]) -> str | None:
    for classifier in classifiers:
        if classifier.startswith(_CLASSIFIER_PREFIX):
            found = _license_from_name(classifier)
            if found:
                return found
    return None


def _from_pyproject(path: Path, repo_dir: Path) -> str | None:
    try:
        project = tomllib.loads(_read_text(path)).get("project", {})
    except tomllib.TOMLDecodeError:
        return None
    value = project.get("license")
    if isinstance(value, str):
        found = license_from_text(value)
        if found:
            return found
    elif isinstance(value, dict):
        if isinstance(value.get("text"), str):
            found = license_from_text(value["text"])
            if found:
                return found
        if isinstance(value.get("file"), str):
            found = license_from_text(_read_text(repo_dir / value["file"]))
            if found:
                return found
    return _from_classifiers(c for c in project.get("classifiers", []) if isinstance(c, str))


def _from_setup_cfg(path: Path) -> str | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(_read_text(path))
    except configparser.Error:
        return None
    if not parser.has_section("metadata"):
        return None
    value = parser.get("metadata", "license", fallback="")
    found = license_from_text(value) if value else None
    if found:
        return found
    return _from_classifiers(
        c.strip() for c in parser.get("metadata", "classifiers", fallback="").splitlines()
    )


def _from_package_json(path: Path) -> str | None:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError:
        return None
    value = data.get("license") if isinstance(data, dict) else None
    if isinstance(value, dict):
        value = value.get("type")
    return license_from_text(value) if isinstance(value, str) else None


def _from_metadata_dirs(repo_dir: Path) -> str | None:
    """Metadata of installed or built packages: ``*.dist-info``/``*.egg-info`` and PKG-INFO."""
    metadata = [repo_dir / name for name in _METADATA_FILES]
    license_dirs: list[Path] = []
    try:
        for child in sorted(repo_dir.iterdir()):
            if child.is_dir() and child.suffix in (".dist-info", ".egg-info"):
                metadata += [child / name for name in _METADATA_FILES]
                license_dirs += [child / "licenses", child]
    except OSError:
        return None
    # A package's declared license (License-Expression, classifiers) is more reliable than the
    # license files it ships, which often bundle the licenses of vendored code.
    for path in metadata:
        if path.is_file():
            found = _from_metadata_text(_read_text(path))
            if found:
                return found
    for directory in license_dirs:
        if directory.is_dir():
            found = _from_license_files(directory)
            if found:
                return found
    return None


def _from_spdx_headers(repo_dir: Path) -> str | None:
    """The first ``SPDX-License-Identifier`` among the first source files of a walk."""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(repo_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "node_modules")
        for name in sorted(filenames):
            if os.path.splitext(name)[1] not in _SOURCE_SUFFIXES:
                continue
            seen += 1
            match = _SPDX_HEADER_RE.search(_read_text(Path(dirpath) / name, 4096))
            if match:
                found = _spdx_expression(match.group(1))
                if found:
                    return found
            if seen >= _MAX_HEADER_FILES:
                return None
    return None


def detect_license(repo_dir: str | Path) -> str:
    """SPDX id of the repository's license, or ``"unknown"`` when no source names one."""
    repo_dir = Path(repo_dir)
    if not repo_dir.is_dir():
        return UNKNOWN
    probes = (
        lambda: _from_license_files(repo_dir),
        lambda: _from_metadata_dirs(repo_dir),
        lambda: (
            _from_pyproject(repo_dir / "pyproject.toml", repo_dir)
            if (repo_dir / "pyproject.toml").is_file()
            else None
        ),
        lambda: _from_setup_cfg(repo_dir / "setup.cfg") if (repo_dir / "setup.cfg").is_file() else None,
        lambda: (
            _from_package_json(repo_dir / "package.json") if (repo_dir / "package.json").is_file() else None
        ),
        lambda: _from_spdx_headers(repo_dir),
    )
    for probe in probes:
        found = probe()
        if found:
            return found
    return UNKNOWN
