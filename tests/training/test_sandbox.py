"""The execution sandbox contains hostile programs and reports why each one failed."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from training.sandbox import ISOLATIONS, STATUSES, Limits, Sandbox, SandboxError

REPO = Path(__file__).resolve().parents[2]
FAST = Limits(cpu_seconds=2, wall_seconds=4, memory_bytes=256 * 1024 * 1024, max_processes=16)

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(FAST, isolation="auto", workers=2)


@needs_bwrap
def test_auto_picks_bubblewrap_with_every_protection(sandbox: Sandbox) -> None:
    result = sandbox.run("print(6 * 7)")
    assert result.passed, result
    assert result.stdout.strip() == "42"
    assert result.isolation == "bwrap"
    for protection in ("mount-namespace", "pid-namespace", "network-namespace", "rlimits"):
        assert protection in result.protections


def test_failing_assert_reports_the_assertion(sandbox: Sandbox) -> None:
    result = sandbox.run("def add(a, b):\n    return a - b\n\nassert add(2, 2) == 4, 'add is wrong'\n")
    assert result.status == "failed"
    assert result.reason == "AssertionError: add is wrong"
    assert result.returncode == 1


def _secret_file(tmp_path: Path) -> Path:
    secret = tmp_path / ".ssh" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("PRIVATE KEY")
    secret.chmod(0o644)
    return secret


HOSTILE = {
    "infinite loop": ("while True:\n    pass\n", {"cpu_limit", "timeout"}),
    "sleeping forever": ("import time\ntime.sleep(3600)\n", {"timeout"}),
    "fork bomb": (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        {"timeout", "cpu_limit"},
    ),
    "memory hog": (
        "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 1024 * 1024))\n",
        {"memory_limit"},
    ),
    "huge output": ("import sys\nwhile True:\n    sys.stdout.write('spam' * 4096)\n", {"output_limit"}),
    "huge file": (
        "with open('big.bin', 'wb') as f:\n    f.write(b'0' * (64 * 1024 * 1024))\n",
        {"file_size_limit"},
    ),
    "opening a socket": (
        "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\n",
        {"failed"},
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program_is_contained(sandbox: Sandbox, name: str) -> None:
    code, statuses = HOSTILE[name]
    start = time.monotonic()
    result = sandbox.run(code)
    assert result.status in statuses, result
    assert result.status in STATUSES
    assert result.reason
    # Killed within the wall-time limit plus teardown.
    assert time.monotonic() - start < FAST.wall_seconds + 5
    assert len(result.stdout) <= FAST.max_output_bytes


def test_sandbox_keeps_working_after_hostile_programs(sandbox: Sandbox) -> None:
    results = sandbox.run_many([HOSTILE["fork bomb"][0], "print('still here')"])
    assert results[1].passed and results[1].stdout == "still here\n"


def test_files_outside_the_work_dir_are_invisible(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = _secret_file(tmp_path)
    outside = tmp_path / "written-by-sandbox.txt"
    probes = [
        f"print(open({str(secret)!r}).read())",
        "import os\nprint(open(os.path.expanduser('~/.ssh/id_rsa')).read())",
        f"print(open({str(Path.home() / '.bashrc')!r}).read())",
        f"print(open({str(REPO / 'pyproject.toml')!r}).read())",
        f"open({str(outside)!r}, 'w').write('pwned')",
        f"open({str(REPO / 'pwned.txt')!r}, 'w').write('pwned')",
    ]
    for code, result in zip(probes, sandbox.run_many(probes), strict=True):
        assert result.status == "failed", (code, result)
        assert "Error" in result.reason
        assert "PRIVATE KEY" not in result.stdout
    assert not outside.exists()
    assert not (REPO / "pwned.txt").exists()


def test_the_work_dir_is_writable_and_empty(sandbox: Sandbox) -> None:
    code = (
        "import os\nassert os.listdir('.') == [], os.listdir('.')\n"
        "open('notes.txt', 'w').write('ok')\nprint(open('notes.txt').read())\n"
    )
    result = sandbox.run(code)
    assert result.passed, result
    assert result.stdout.strip() == "ok"


def test_signals_cannot_reach_the_caller(sandbox: Sandbox) -> None:
    code = (
        f"import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill({os.getpid()}, signal.SIGKILL)\n"
    )
    result = sandbox.run(code)
    assert not result.passed
    assert result.reason
    # This process is alive to make the assertion.
    assert os.getpid() > 0


def test_environment_is_clean(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKCODER_TEST_SECRET", "hunter2")
    result = sandbox.run(
        "import os\nprint(sorted(os.environ))\nprint(os.environ.get('STACKCODER_TEST_SECRET'))"
    )
    assert result.passed, result
    assert "hunter2" not in result.stdout
    assert "HF_HUB_OFFLINE" not in result.stdout


def test_run_many_keeps_input_order(sandbox: Sandbox) -> None:
    programs = [f"import time\ntime.sleep({0.3 * (i % 2)})\nprint({i})" for i in range(6)]
    results = sandbox.run_many(programs, progress=False)
    assert [r.stdout.strip() for r in results] == [str(i) for i in range(6)]


@pytest.mark.parametrize("isolation", ["unshare", "rlimits"])
def test_fallback_modes_say_loudly_what_applies(isolation: str, tmp_path: Path) -> None:
    if ISOLATIONS[isolation].available() is not None:
        pytest.skip(f"{isolation} is not available here")
    with pytest.warns(RuntimeWarning, match="bubblewrap isolation is unavailable"):
        fallback = Sandbox(FAST, isolation=isolation, workers=2)
    secret = _secret_file(tmp_path)
    programs = {
        "print('ok')": {"passed"},
        HOSTILE["opening a socket"][0]: {"failed"},
        f"print(open({str(secret)!r}).read())": {"failed"},
        f"open({str(REPO / 'pwned.txt')!r}, 'w').write('x')": {"failed"},
        HOSTILE["memory hog"][0]: {"memory_limit"},
        HOSTILE["infinite loop"][0]: {"cpu_limit", "timeout"},
        HOSTILE["fork bomb"][0]: {"cpu_limit", "timeout"},
    }
    results = fallback.run_many(list(programs))
    for (code, statuses), result in zip(programs.items(), results, strict=True):
        assert result.status in statuses, (code, result)
        assert result.isolation == isolation
        assert "audit-guard" in result.protections
        assert "mount-namespace" not in result.protections
        assert "PRIVATE KEY" not in result.stdout
    assert not (REPO / "pwned.txt").exists()


def test_unknown_isolation_lists_the_known_ones() -> None:
    with pytest.raises(SandboxError, match="bwrap, unshare, rlimits"):
        Sandbox(FAST, isolation="docker")


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="memory_bytes"):
        Limits(memory_bytes=1024)


def _sandbox_uid_processes() -> list[int]:
    """Pids of processes running as one of the sandbox's throw-away uids (root callers only)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid >= 1_000_000_000:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_daemonised_children_do_not_outlive_the_execution(sandbox: Sandbox) -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "print('parent done')\n"
    )
    start = time.monotonic()
    result = sandbox.run(code)
    assert result.passed and result.stdout == "parent done\n", result
    assert time.monotonic() - start < FAST.wall_seconds + 2
    if os.geteuid() == 0:
        deadline = time.monotonic() + 3
        while _sandbox_uid_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _sandbox_uid_processes() == []


def test_auto_falls_back_loudly_when_bubblewrap_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.sandbox import isolation

    real_which = shutil.which
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None if name == "bwrap" else real_which(name))
    with pytest.warns(RuntimeWarning, match="install bubblewrap"):
        fallback = Sandbox(FAST, isolation="auto")
    assert fallback.isolation in ("unshare", "rlimits")
    result = fallback.run(HOSTILE["opening a socket"][0])
    assert result.status == "failed" and result.isolation == fallback.isolation
    assert "mount-namespace" not in result.protections
