"""PII redaction: e-mail addresses, IP addresses, keys and passwords.

Secrets are found by ``detect-secrets`` (its line plugins for cloud keys, tokens, private keys
and password/secret assignments); e-mail and IP addresses by regular expressions, as BigCode's
PII pipeline does. Found values are replaced by ``<EMAIL>``, ``<KEY>`` or ``<PASSWORD>``; public
IP addresses by one of a few fixed private addresses (chosen by a hash of the original, so the
same address maps to the same replacement).
"""

from __future__ import annotations

import ipaddress
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Redaction", "redact", "SECRET_PLUGINS", "REPLACEMENT_IPS"]

# detect-secrets plugins run on every line (the entropy plugins are left out: on source code
# they flag hashes, test vectors and identifiers far more often than secrets).
SECRET_PLUGINS = (
    "ArtifactoryDetector",
    "AWSKeyDetector",
    "AzureStorageKeyDetector",
    "BasicAuthDetector",
    "CloudantDetector",
    "DiscordBotTokenDetector",
    "GitHubTokenDetector",
    "GitLabTokenDetector",
    "IbmCloudIamDetector",
    "IbmCosHmacDetector",
    "JwtTokenDetector",
    "KeywordDetector",
    "MailchimpDetector",
    "NpmDetector",
    "OpenAIDetector",
    "PrivateKeyDetector",
    "PypiTokenDetector",
    "SendGridDetector",
    "SlackDetector",
    "SoftlayerDetector",
    "SquareOAuthDetector",
    "StripeDetector",
    "TelegramBotTokenDetector",
    "TwilioKeyDetector",
)
REPLACEMENT_IPS = ("172.16.31.10", "172.16.58.3", "192.168.127.12", "10.0.0.17")

_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
_PASSWORD_WORDS = re.compile(r"(?i)pass(?:word|wd|phrase)?|pwd")
# Lines that can hold a secret a plugin detects: a quoted value, a key block or a URL with
# credentials, together with a secret-like name or a known token prefix. Only these lines go
# through the (slow) plugins.
_SECRET_HINT = re.compile(
    r"(?i)(?:key|secret|token|passw|pwd|auth|cred|private|contrase)[\w-]*['\"]?\s*(?:=|:|,|\(|\[)"
    r"|AKIA|ASIA|AKC|AP[0-9A-F]|AccountKey|sk_live|rk_live|sk-|xox[abprs]|ghp_|gho_|ghs_|glpat|eyJ|pypi-|SG\."
    r"|sq0|-us\d|\d{8,10}:AA|BEGIN [A-Z ]*PRIVATE|://[^/\s:@]+:[^/\s@]+@"
)
_HAS_VALUE = re.compile(r"""["'`]|BEGIN|://""")


@dataclass
class Redaction:
    """A redacted text and the count of replacements by kind (email, ip, key, password)."""

    text: str
    counts: Counter[str] = field(default_factory=Counter)


def _replace_ip(match: re.Match[str], counts: Counter[str]) -> str:
    value = match.group(0)
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return value
    if ip.is_private or ip.is_loopback or ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return value
    counts["ip"] += 1
    return REPLACEMENT_IPS[zlib.crc32(value.encode()) % len(REPLACEMENT_IPS)]


def _replace_email(match: re.Match[str], counts: Counter[str]) -> str:
    counts["email"] += 1
    return "<EMAIL>"


_SETTINGS = {"plugins_used": [{"name": name} for name in SECRET_PLUGINS]}


def _secrets(lines: list[str]) -> list[list[tuple[str, str]]]:
    """For each line, the (secret value, kind) pairs detect-secrets finds; kind is "password" or "key"."""
    from detect_secrets.core import scan
    from detect_secrets.settings import transient_settings

    found: list[list[tuple[str, str]]] = []
    with transient_settings(_SETTINGS):
        for line in lines:
            hits = []
            for secret in scan.scan_line(line):
                value = secret.secret_value
                if not value or len(value) < 4:
                    continue
                is_password = secret.type == "Basic Auth Credentials" or (
                    secret.type == "Secret Keyword" and _PASSWORD_WORDS.search(line) is not None
                )
                kind = "password" if is_password else "key"
                hits.append((value, kind))
            found.append(hits)
    return found


def redact(text: str) -> Redaction:
    """Replace e-mails, public IPs, keys and passwords in a source text."""
    counts: Counter[str] = Counter()
    lines = text.split("\n")
    candidates = [i for i, line in enumerate(lines) if _HAS_VALUE.search(line) and _SECRET_HINT.search(line)]
    if candidates:
        for i, hits in zip(candidates, _secrets([lines[i] for i in candidates]), strict=True):
            line = lines[i]
            for value, kind in hits:
                if value in line:
                    line = line.replace(value, "<PASSWORD>" if kind == "password" else "<KEY>")
                    counts[kind] += 1
            lines[i] = line
    out = "\n".join(lines)
    out = _EMAIL_RE.sub(lambda m: _replace_email(m, counts), out)
    out = _IPV4_RE.sub(lambda m: _replace_ip(m, counts), out)
    return Redaction(out, counts)
