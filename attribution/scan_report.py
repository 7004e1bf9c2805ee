"""Readable forms of a repository scan: a terminal summary and a self-contained HTML page.

Both group the findings by source repository and license, show the license fit in the
scanned repository's license, and end with the totals; the HTML page puts each finding's
scanned lines and source lines side by side.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone

from attribution.scan import Finding, ScanResult

__all__ = ["to_terminal", "to_html"]

_FIT_MARK = {"compatible": "ok", "incompatible": "INCOMPATIBLE", "unknown": "check"}


def _where(f: Finding) -> str:
    m = f.match
    return (
        f"{f.file}:{m['query_start_line']}-{m['query_end_line']}  <-  "
        f"{m['path']}:{m['source_start_line']}-{m['source_end_line']}  ({m['kind']} {m['score']:.2f})"
    )


def _totals_line(result: ScanResult) -> str:
    t = result.totals()
    fits = ", ".join(f"{n} {verdict}" for verdict, n in sorted(t["by_license_fit"].items())) or "none"
    return (
        f"{t['files']} files scanned in {t['seconds']:.1f} s ({t['files_per_second']:.0f} files/s), "
        f"{t['skipped']} skipped; {t['findings']} findings in {t['files_with_findings']} files from "
        f"{t['source_repositories']} repositories (license fit: {fits}); "
        f"{t['mine']} matches of your own code left out"
    )


def to_terminal(result: ScanResult) -> str:
    """Groups, one line per finding, and the totals."""
    out = [f"scan of {result.root} (license {result.project_license}) against {result.index}"]
    if not result.findings:
        out.append("no file matches the index")
    for (repo, license), findings in result.groups():
        fit = findings[0].match["license_fit"]
        out.append("")
        out.append(
            f"{repo} ({license}) — {len(findings)} findings — [{_FIT_MARK[fit['verdict']]}] {fit['text']}"
        )
        out += [f"    {_where(f)}" for f in findings]
    out.append("")
    out.append(_totals_line(result))
    return "\n".join(out)


_CSS = """
body{font:14px system-ui,sans-serif;margin:2em;color:#1f2328}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #d0d7de}
.fit{padding:.1em .5em;border-radius:1em;font-size:.85em;margin-left:.5em}
.compatible{background:#dafbe1}.incompatible{background:#ffebe9}.unknown{background:#fff8c5}
table.pair{width:100%;border-collapse:collapse;table-layout:fixed;margin:.5em 0 1.5em}
table.pair th{text-align:left;font-weight:600;background:#f6f8fa;padding:.3em .5em}
table.pair td{vertical-align:top;padding:0;border:1px solid #d0d7de}
pre{margin:0;padding:.5em;overflow-x:auto;font:12px ui-monospace,monospace}
.totals td{padding:.2em 1em .2em 0}
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _finding_html(f: Finding) -> str:
    m = f.match
    link = f' — <a href="{_e(m["url"])}">{_e(m["url"])}</a>' if m.get("url") else ""
    return (
        f'<table class="pair"><tr><th>{_e(f.file)} lines {m["query_start_line"]}–{m["query_end_line"]}</th>'
        f"<th>{_e(m['repo'])}/{_e(m['path'])} lines {m['source_start_line']}–{m['source_end_line']} "
        f"({_e(m['kind'])} {m['score']:.2f}){link}</th></tr>"
        f"<tr><td><pre>{_e(f.query_text)}</pre></td><td><pre>{_e(f.source_text)}</pre></td></tr></table>"
    )


def to_html(result: ScanResult) -> str:
    """A self-contained page: totals, then each (repository, license) group with side-by-side snippets."""
    t = result.totals()
    rows = [
        ("Repository", result.root),
        ("Its license", result.project_license),
        ("Index", result.index),
        ("Files scanned", f"{t['files']} ({t['skipped']} skipped)"),
        ("Findings", f"{t['findings']} in {t['files_with_findings']} files"),
        ("Source repositories", t["source_repositories"]),
        ("License fit", ", ".join(f"{n} {v}" for v, n in sorted(t["by_license_fit"].items())) or "—"),
        ("Own code left out", f"{t['mine']} matches"),
        ("Time", f"{t['seconds']:.1f} s ({t['files_per_second']:.0f} files/s)"),
    ]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>stackcoder scan of {_e(result.root)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Provenance scan of {_e(result.root)}</h1>",
        "<table class='totals'>"
        + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
        + "</table>",
    ]
    if not result.findings:
        parts.append("<p>No file matches the index.</p>")
    for (repo, license), findings in result.groups():
        fit = findings[0].match["license_fit"]
        parts.append(
            f"<h2>{_e(repo)} <small>({_e(license)}, {len(findings)} findings)</small>"
            f"<span class='fit {_e(fit['verdict'])}'>{_e(fit['text'])}</span></h2>"
        )
        parts += [_finding_html(f) for f in findings]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(
        f"<p><small>Written by stackcoder index scan, {stamp}. License fit is a guide, not legal advice.</small></p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)
