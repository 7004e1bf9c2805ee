"""Fixtures of the VS Code end-to-end tests: the packaged extension, an attribution index over a
few standard-library files, a workspace, and code-server serving them on 127.0.0.1."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "e2e"
STACKCODER = REPO / ".venv" / "bin" / "stackcoder"
# Standard-library modules indexed as the corpus "cpython" (stable, license known: PSF-2.0).
CORPUS_MODULES = ("heapq", "bisect", "textwrap", "colorsys")
PASTED_MODULE = "colorsys"
# Stop needs an answer long enough to still be streaming when the click lands; the default model
# often ends its answer within a second, so that scenario runs only on request (STACKCODER_E2E_STOP=1).
# STACKCODER_E2E_SCENARIOS=ghost,crash runs a subset (to look into one scenario).
SCENARIOS = [
    "ghost",
    "brackets",
    "warmup",
    "explain",
    "chat",
    *(["stop"] if os.environ.get("STACKCODER_E2E_STOP") == "1" else []),
    "provenance",
    "mine",
    "chatcode",
    "crash",
]
if os.environ.get("STACKCODER_E2E_SCENARIOS"):
    SCENARIOS = [name.strip() for name in os.environ["STACKCODER_E2E_SCENARIOS"].split(",") if name.strip()]
# The warmup scenario writes this file when it starts (earlier, its code would be among the
# workspace snippets of the scenarios before it) and moves the cursor to the end of its last line.
WARM_FILE = (
    "import os\n\n\n"
    "def list_python_files(root):\n"
    "    found = []\n"
    "    for name in os.listdir(root):\n"
    "        if name.endswith('.py'):\n"
    "            found.append(os.path.join(root, name))\n"
    "    return found\n\n\n"
    "def count_lines(path):\n"
    "    with open(path) as handle:\n"
    "        total = 0\n"
    "        for line in handle:"
)
# The browser session's limit; the scenarios take 1-3 minutes on 2 cores.
DRIVER_TIMEOUT_S = 360


def _print_tail(title: str, text: str, lines: int = 80) -> None:
    print(f"---- {title} (last {lines} lines) ----", *text.splitlines()[-lines:], sep="\n", file=sys.stderr)


def _run(cmd: list[str], what: str, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _needs(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed; run scripts/system_deps.sh (Debian packages) first.")


@pytest.fixture(scope="session")
def vsix() -> Path:
    """The extension, built and packaged by vscode-extension/build.sh (npm ci, tsc, esbuild, vsce)."""
    _needs("npm")
    _run([str(REPO / "vscode-extension" / "build.sh")], "building the extension", 600)
    return REPO / "vscode-extension" / "stackcoder.vsix"


@pytest.fixture(scope="session")
def code_server_installed() -> None:
    """code-server 4.100.3 in .cache/code-server (a one-time install of a few minutes)."""
    _needs("rg")
    _needs("chromium")
    _run([str(REPO / "scripts" / "code_server.sh"), "install"], "installing code-server", 1800)


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(index dir, corpus folder): `stackcoder index build` over a few standard-library files."""
    import importlib

    corpus = tmp_path_factory.mktemp("corpus")
    lib = corpus / "cpython" / "Lib"
    lib.mkdir(parents=True)
    for name in CORPUS_MODULES:
        shutil.copy(importlib.import_module(name).__file__, lib / f"{name}.py")
    (corpus / "cpython" / "LICENSE").write_text(
        "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2\n\n"
        '1. This LICENSE AGREEMENT is between the Python Software Foundation ("PSF"), and\n'
        'the Individual or Organization ("Licensee") accessing and otherwise using this software.\n'
    )
    out = tmp_path_factory.mktemp("index") / "stdlib"
    _run(
        [
            str(STACKCODER),
            "index",
            "build",
            str(corpus),
            "--out",
            str(out),
            "--ext",
            "py",
            "--workers",
            "1",
            "--no-progress",
        ],
        "stackcoder index build",
        600,
    )
    return out, corpus


def _function(path: Path, start: str, end: str) -> str:
    text = path.read_text()
    return text[text.index(start) : text.index(end)].rstrip() + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def e2e_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sample workspace plus empty files the scenarios type and paste into."""
    ws = tmp_path_factory.mktemp("workspace") / "project"
    shutil.copytree(REPO / "vscode-extension" / "sample-workspace", ws)
    (ws / "ghost.py").write_text("")
    (ws / "brackets.py").write_text("")
    (ws / "pasted.py").write_text("")
    return ws


@pytest.fixture(scope="session")
def code_server(
    vsix: Path,
    code_server_installed: None,
    corpus_index: tuple[Path, Path],
    e2e_workspace: Path,
    real_model_name: str,
    engine_cache_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict]:
    """code-server on a free loopback port with the extension, the model and the index.

    Yields {"url", "pgid"}: every process it starts (extension host, `stackcoder serve`) is in
    process group `pgid`, which is stopped at the end."""
    home = tmp_path_factory.mktemp("code-server")
    settings = {
        "stackcoder.server.path": str(STACKCODER),
        "stackcoder.server.extraArgs": ["--log-file", str(home / "server.log")],
        # no stackcoder.model.path: the server loads the product's default, the catalog's real model
        "stackcoder.provenance.indexPath": str(corpus_index[0]),
        "stackcoder.completion.maxNewTokens": 24,
        "stackcoder.chat.maxNewTokens": 128,
        "stackcoder.chat.temperature": 0.0,  # greedy: a scenario's answer is the same on every run
        "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
        "editor.suggestOnTriggerCharacters": False,
        "editor.inlineSuggest.enabled": True,
        "editor.autoClosingBrackets": "languageDefined",  # as a user has it: the brackets scenario needs it
        "editor.formatOnPaste": False,
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "security.workspace.trust.enabled": False,
        "telemetry.telemetryLevel": "off",
        "extensions.autoUpdate": False,
        "extensions.autoCheckUpdates": False,
    }
    # Extra user settings for a run, e.g. STACKCODER_E2E_SETTINGS='{"stackcoder.model.backend": "transformers"}'.
    settings.update(json.loads(os.environ.get("STACKCODER_E2E_SETTINGS", "{}")))
    settings_file = home / "settings.json"
    settings_file.write_text(json.dumps(settings, indent=2))
    # Only this run's screenshots and logs: a stale picture must not pass for a fresh one.
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    port = _free_port()
    password_file = home / "password"
    password_file.write_text(secrets.token_urlsafe(18))
    password_file.chmod(0o600)
    env = {
        **os.environ,
        "STACKCODER_CS_PASSWORD_FILE": str(password_file),
        "STACKCODER_CS_HOME": str(home),
        "STACKCODER_CS_SETTINGS": str(settings_file),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    log = (home / "code-server.log").open("w")
    proc = subprocess.Popen(
        [str(REPO / "scripts" / "code_server.sh"), "start", str(vsix), str(e2e_workspace), str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"code-server did not start:\n{(home / 'code-server.log').read_text()[-3000:]}"
                    )
                time.sleep(0.5)
        yield {
            "url": f"{url}/?folder={e2e_workspace}",
            "password": password_file.read_text(),
            "pgid": proc.pid,
            "server_log": home / "server.log",
            "logs": home / "user-data" / "logs",
        }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        for name in ("server.log", "code-server.log"):
            if (home / name).exists():
                shutil.copy(home / name, ARTIFACTS / name)
        # The extension's own log (its output channel), kept next to the screenshots.
        for i, found in enumerate(sorted((home / "user-data" / "logs").rglob("*stackcoder*.log"))):
            shutil.copy(found, ARTIFACTS / f"extension-{i}.log")


@pytest.fixture(scope="session")
def vscode_run(
    code_server: dict,
    corpus_index: tuple[Path, Path],
    e2e_workspace: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict:
    """Runs every scenario once in one browser session; each test asserts on its part."""
    _needs("node")
    corpus_text = (corpus_index[1] / "cpython" / "Lib" / f"{PASTED_MODULE}.py").read_text()
    # A whole function of the indexed file: long enough for an exact 50-character span.
    start = corpus_text.index("def rgb_to_hls")
    end = corpus_text.index("def hls_to_rgb")
    config = {
        "url": code_server["url"],
        "password": code_server["password"],
        "workspace": str(e2e_workspace),
        "serverGroup": code_server["pgid"],
        "shots": str(ARTIFACTS),
        "profile": str(tmp_path_factory.mktemp("chromium")),
        "scenarios": SCENARIOS,
        "question": "How do I add an item to the inventory?",
        "warmText": WARM_FILE,
        "corpusText": corpus_text[start:end],
        # the chat is asked to repeat indexed code (bisect.insort_right), so its block can be marked
        "chatCodeQuestion": "Repeat this Python function exactly, in a code block:\n\n"
        + _function(corpus_index[1] / "cpython" / "Lib" / "bisect.py", "def insort_right", "def insort_left"),
        "resultsFile": str(tmp_path_factory.mktemp("results") / "results.json"),
    }
    config_file = tmp_path_factory.mktemp("driver") / "config.json"
    config_file.write_text(json.dumps(config))
    driver = subprocess.Popen(
        ["node", str(Path(__file__).with_name("vscode_driver.mjs")), str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = driver.communicate(timeout=DRIVER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        driver.kill()
        _, stderr = driver.communicate()
        stderr += f"\nthe driver ran past {DRIVER_TIMEOUT_S} s and was stopped"
    (ARTIFACTS / "driver.log").write_text(stderr)
    results_file = Path(config["resultsFile"])
    if not results_file.exists():
        pytest.fail(f"the browser driver failed before any scenario ran:\n{stderr[-4000:]}")
    results = json.loads(results_file.read_text())
    for name in config["scenarios"]:
        results.setdefault(name, {"error": f"did not run: {stderr.strip().splitlines()[-1:]}"})
    (ARTIFACTS / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2), file=sys.stderr)
    log = code_server["server_log"]
    results["serverLog"] = log.read_text(errors="replace") if log.exists() else ""  # the server's own account
    # What a failure needs explaining: the server's log and the extension's output (the server's stderr).
    _print_tail("server log", results["serverLog"])
    for found in sorted(code_server["logs"].rglob("*stackcoder*.log")):
        _print_tail(f"extension log {found.name}", found.read_text(errors="replace"))
    return results
