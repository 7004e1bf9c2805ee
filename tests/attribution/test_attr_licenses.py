"""License detection on real license texts and package metadata shipped in the environment."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

from attribution.licenses import detect_license, is_permissive, license_from_text

SITE = Path(sysconfig.get_paths()["purelib"])


def _dist_info(name: str) -> Path:
    found = sorted(SITE.glob(f"{name}-*.dist-info"))
    if not found:
        pytest.skip(f"{name} is not installed")
    return found[0]


@pytest.mark.parametrize(
    ("package", "expected"),
    [("datasketch", "MIT"), ("requests", "Apache-2.0"), ("click", "BSD-3-Clause"), ("shellingham", "ISC")],
)
def test_real_license_files(package: str, expected: str) -> None:
    info = _dist_info(package)
    files = [p for p in info.rglob("*") if p.is_file() and p.name.upper().startswith(("LICENSE", "COPYING"))]
    assert files, f"{package} ships no license file"
    assert license_from_text(files[0].read_text(errors="replace")) == expected


def test_bundled_third_party_licenses_do_not_win() -> None:
    # numpy's LICENSE.txt is BSD-3-Clause followed by the licenses of bundled code (GPL among them).
    info = _dist_info("numpy")
    text = next(p for p in info.rglob("LICENSE*") if p.is_file()).read_text(errors="replace")
    assert license_from_text(text) == "BSD-3-Clause"


def test_detect_license_of_a_package_folder_with_its_dist_info(tmp_path: Path) -> None:
    repo = tmp_path / "datasketch"
    repo.mkdir()
    shutil.copytree(_dist_info("datasketch"), repo / _dist_info("datasketch").name)
    (repo / "lsh.py").write_text("x = 1\n")
    assert detect_license(repo) == "MIT"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"pyproject.toml": '[project]\nname = "x"\nlicense = "Apache-2.0"\n'}, "Apache-2.0"),
        ({"pyproject.toml": '[project]\nname = "x"\nlicense = {text = "MIT License"}\n'}, "MIT"),
        (
            {"pyproject.toml": '[project]\nclassifiers = ["License :: OSI Approved :: BSD License"]\n'},
            "BSD-3-Clause",
        ),
        ({"setup.cfg": "[metadata]\nname = x\nlicense = ISC\n"}, "ISC"),
        ({"PKG-INFO": "Metadata-Version: 2.1\nName: x\nLicense: PSF\n\nbody\n"}, "PSF-2.0"),
        ({"package.json": '{"name": "x", "license": "MIT"}'}, "MIT"),
        ({"src/a.c": "// SPDX-License-Identifier: BSD-2-Clause\nint a;\n"}, "BSD-2-Clause"),
        ({"src/a.py": "print(1)\n"}, "unknown"),
    ],
)
def test_detect_license_sources(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert detect_license(tmp_path) == expected


def test_license_file_wins_over_notice(tmp_path: Path) -> None:
    lic = (_dist_info("requests") / "licenses").rglob("LICENSE")
    (tmp_path / "LICENSE").write_text(next(lic).read_text())
    (tmp_path / "NOTICE").write_text("This product includes software under the MIT License.\n")
    assert detect_license(tmp_path) == "Apache-2.0"


def test_stdlib_license_is_psf() -> None:
    lib = Path(sysconfig.get_paths()["stdlib"])
    text = (lib / "LICENSE.txt").read_text() if (lib / "LICENSE.txt").exists() else None
    if text is None:
        pytest.skip("this Python ships no LICENSE.txt")
    assert license_from_text(text) == "PSF-2.0"


def test_short_names_and_expressions() -> None:
    assert license_from_text("License :: OSI Approved :: MIT License") == "MIT"
    assert license_from_text("Apache 2.0") == "Apache-2.0"
    assert license_from_text("mit OR apache-2.0") == "MIT OR Apache-2.0"
    assert license_from_text("no idea") is None
    assert license_from_text("") is None


@pytest.mark.parametrize(
    ("spdx", "expected"),
    [
        ("MIT", True),
        ("Apache-2.0", True),
        ("BSD-3-Clause", True),
        ("PSF-2.0", True),
        ("GPL-3.0", False),
        ("unknown", False),
        ("", False),
        ("GPL-3.0 OR MIT", True),
        ("MIT AND GPL-2.0", False),
        ("MIT AND Apache-2.0", True),
    ],
)
def test_is_permissive(spdx: str, expected: bool) -> None:
    assert is_permissive(spdx) is expected
