"""PII redaction catches planted e-mails, keys, passwords and IPs and leaves ordinary code alone."""

from __future__ import annotations

import re

from helpers.training_corpus import PII_FILE, stdlib_files

from training.pii import REPLACEMENT_IPS, redact


def test_redacts_planted_pii() -> None:
    red = redact(PII_FILE)
    assert "AKIAIOSFODNN7EXAMPLE" not in red.text and '"<KEY>"' in red.text
    assert "correct-horse-battery-staple" not in red.text and '"<PASSWORD>"' in red.text
    assert "jane.doe@example.com" not in red.text and "<EMAIL>" in red.text
    assert "93.184.216.34" not in red.text and any(ip in red.text for ip in REPLACEMENT_IPS)
    assert "127.0.0.1" in red.text  # loopback addresses are not personal
    assert red.counts == {"key": 1, "password": 1, "email": 1, "ip": 1}
    assert "def connect(host=SERVER, port=8080):" in red.text


def test_same_ip_maps_to_same_replacement() -> None:
    a = redact("A = '8.8.4.4'\n").text
    b = redact("B = '8.8.4.4'\n").text
    assert a.split("'")[1] == b.split("'")[1]


def test_leaves_ordinary_code_alone() -> None:
    """Ten real standard-library modules: no key or password is found in them, the only lines
    changed are those holding an e-mail or public IP address (authors' addresses in headers),
    and most modules come back unchanged."""
    unchanged = 0
    for path in stdlib_files(10, offset=10):
        text = path.read_text(encoding="utf-8")
        red = redact(text)
        assert set(red.counts) <= {"email", "ip"}, (path, red.counts)
        before, after = text.split("\n"), red.text.split("\n")
        assert len(before) == len(after), path
        changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
        assert len(changed) <= sum(red.counts.values()), path
        for old, new in changed:  # an address was replaced, and only that
            email = "<EMAIL>" in new and re.search(r"[\w.+-]@[\w-]+(\.[\w-]+)+", old)
            ip = any(ip in new and ip not in old for ip in REPLACEMENT_IPS)
            assert email or ip, (old, new)
        unchanged += not changed
    assert unchanged >= 8
