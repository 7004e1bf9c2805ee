"""The execution sandbox contains hostile programs, in every mode it offers, and reports why each failed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.sandbox_attacks import ATTACK_NAMES, RESOURCE_HOGS, Target, attacks, escapes, make_target

from training.sandbox import ISOLATIONS, STATUSES, Limits, Sandbox, SandboxError
from training.sandbox.cgroup import find_cgroups
from training.sandbox.runner import memory_per_execution, workers_for

REPO = Path(__file__).resolve().parents[2]
FAST = Limits(cpu_seconds=2, wall_seconds=4, memory_bytes=256 * 1024 * 1024, max_processes=16)
SYSTEM_PYTHON = "/usr/bin/python3"
NOBODY = 65534

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(FAST, isolation="auto", workers=2)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP listener on the host's loopback that no sandboxed program may reach."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock


@pytest.fixture
def target(tmp_path: Path, listener: socket.socket) -> Target:
    return make_target(tmp_path, REPO, listener.getsockname()[1])


def _settle(_: Target) -> None:
    """Give processes a program might have left a moment to show up in /proc."""
    time.sleep(0.3)


def test_auto_is_bubblewrap_with_every_protection(sandbox: Sandbox) -> None:
    result = sandbox.run("print(6 * 7)")
    assert result.passed, result
    assert result.stdout.strip() == "42"
    assert result.isolation == "bwrap"
    for protection in (
        "mount-namespace",
        "pid-namespace",
        "network-namespace",
        "unprivileged-uid",
        "rlimits",
    ):
        assert protection in result.protections


def test_programs_never_run_as_root(sandbox: Sandbox) -> None:
    result = sandbox.run("import os\nprint(os.getuid(), os.geteuid(), os.getgid())")
    assert result.passed, result
    assert "0" not in result.stdout.split()


@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_attack_escapes_nothing(
    sandbox: Sandbox, target: Target, listener: socket.socket, attack: str
) -> None:
    result = sandbox.run(attacks(target)[attack])
    assert result.status in STATUSES
    _settle(target)
    assert escapes(target, [result.stdout, result.stderr], listener) == []


@pytest.mark.parametrize("name", list(RESOURCE_HOGS))
def test_resource_hog_is_stopped(sandbox: Sandbox, name: str) -> None:
    code, statuses = RESOURCE_HOGS[name]
    if name == "memory spread over processes" and find_cgroups() is None:
        statuses = {"passed"}  # without a cgroup only each process is capped
    start = time.monotonic()
    result = sandbox.run(code)
    assert result.status in statuses, result
    assert result.reason
    assert time.monotonic() - start < FAST.wall_seconds + 5
    assert len(result.stdout) <= FAST.max_output_bytes


@pytest.mark.skipif(find_cgroups() is None, reason="no cgroup can be created here")
def test_memory_is_capped_per_execution_not_per_process(sandbox: Sandbox) -> None:
    result = sandbox.run(RESOURCE_HOGS["memory spread over processes"][0])
    assert result.status == "memory_limit", result
    assert "memory-cgroup" in result.protections


def test_sandbox_keeps_working_after_hostile_programs(sandbox: Sandbox) -> None:
    results = sandbox.run_many([RESOURCE_HOGS["fork bomb"][0], "print('still here')"])
    assert results[1].passed and results[1].stdout == "still here\n"


def test_the_work_dir_is_writable_and_empty(sandbox: Sandbox) -> None:
    code = (
        "import os\nassert os.listdir('.') == [], os.listdir('.')\n"
        "open('notes.txt', 'w').write('ok')\nprint(open('notes.txt').read())\n"
    )
    result = sandbox.run(code)
    assert result.passed, result
    assert result.stdout.strip() == "ok"


def test_failing_assert_reports_the_assertion(sandbox: Sandbox) -> None:
    result = sandbox.run("def add(a, b):\n    return a - b\n\nassert add(2, 2) == 4, 'add is wrong'\n")
    assert result.status == "failed"
    assert result.reason == "AssertionError: add is wrong"
    assert result.returncode == 1


def test_environment_is_clean(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKCODER_TEST_SECRET", "hunter2")
    result = sandbox.run(
        "import os\nprint(sorted(os.environ))\nprint(os.environ.get('STACKCODER_TEST_SECRET'))"
    )
    assert result.passed, result
    assert "hunter2" not in result.stdout


def test_run_many_keeps_input_order(sandbox: Sandbox) -> None:
    programs = [f"import time\ntime.sleep({0.3 * (i % 2)})\nprint({i})" for i in range(6)]
    results = sandbox.run_many(programs, progress=False)
    assert [r.stdout.strip() for r in results] == [str(i) for i in range(6)]


def test_only_bubblewrap_and_the_named_opt_in_exist() -> None:
    assert set(ISOLATIONS) == {"bwrap", "unsafe-none"}
    with pytest.raises(SandboxError, match="bwrap, unsafe-none"):
        Sandbox(FAST, isolation="rlimits")


def test_without_bubblewrap_it_refuses_and_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.sandbox import isolation

    real_which = shutil.which
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None if name == "bwrap" else real_which(name))
    with pytest.raises(SandboxError, match=r"install it \(apt-get install bubblewrap\)") as caught:
        Sandbox(FAST, isolation="auto")
    assert str(caught.value).count(". ") == 0  # one sentence


@pytest.mark.skipif(os.geteuid() != 0, reason="checks the refusal a root caller gets")
def test_the_unsafe_opt_in_refuses_root() -> None:
    with pytest.raises(SandboxError, match="as root"):
        Sandbox(FAST, isolation="unsafe-none")


def test_workers_respect_the_memory_limit() -> None:
    gib = 1024**3
    limits = Limits(memory_bytes=512 * 1024 * 1024)
    assert workers_for(limits, 8, cgroup=True, available=2 * gib) == 4
    assert workers_for(limits, 2, cgroup=True, available=2 * gib) == 2
    assert workers_for(limits, 8, cgroup=False, available=2 * gib) == 1  # 32 processes at 512 MiB each
    assert memory_per_execution(limits, False) == 32 * limits.memory_bytes + 2 * limits.tmpfs_bytes


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="memory_bytes"):
        Limits(memory_bytes=1024)


def test_no_cgroup_is_left_behind(sandbox: Sandbox) -> None:
    roots = find_cgroups()
    if roots is None:
        pytest.skip("no cgroup can be created here")
    sandbox.run_many([RESOURCE_HOGS["fork bomb"][0], "print(1)"])
    for hierarchy in roots.hierarchies:
        assert not [n for n in os.listdir(hierarchy.parent) if n.startswith("stackcoder-sandbox-")]


# ---- an unprivileged caller: bubblewrap in a user namespace, and the unsafe opt-in ---------------

_UNPRIVILEGED_RUN = """
import json, sys, warnings
from training.sandbox import Limits, Sandbox, SandboxError
programs, isolation = json.loads(sys.stdin.read())
limits = Limits(cpu_seconds=2, wall_seconds=4, memory_bytes=256 * 1024 * 1024, max_processes=16)
try:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        box = Sandbox(limits, isolation=isolation, workers=2)
except SandboxError as exc:
    print(json.dumps({"error": str(exc)}))
    raise SystemExit(0)
results = [r.to_dict() for r in box.run_many(programs)]
print(json.dumps({"results": results, "warnings": [str(w.message) for w in caught]}))
"""


def _run_unprivileged(programs: list[str], isolation: str) -> dict:
    proc = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r})\n{_UNPRIVILEGED_RUN}"],
        input=json.dumps([programs, isolation]),
        capture_output=True,
        text=True,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


needs_unprivileged_caller = pytest.mark.skipif(
    os.geteuid() != 0 or not os.access(SYSTEM_PYTHON, os.X_OK),
    reason="needs root to become another user, and a system python3 that user can run",
)


@pytest.mark.slow
@needs_unprivileged_caller
def test_an_unprivileged_caller_gets_bubblewrap_that_holds(listener: socket.socket) -> None:
    # A folder that user could read and write without isolation, with a secret it could read.
    folder = Path(tempfile.mkdtemp(prefix="stackcoder-sandbox-test-", dir="/tmp"))
    folder.chmod(0o777)
    target = make_target(folder, folder, listener.getsockname()[1])
    hogs = {k: v for k, v in RESOURCE_HOGS.items() if k != "memory spread over processes"}
    programs = list(attacks(target).values()) + [code for code, _ in hogs.values()]
    answer = _run_unprivileged(programs, "auto")
    if "error" in answer:
        pytest.skip(f"bubblewrap does not work for an unprivileged user here: {answer['error']}")
    results = answer["results"]
    _settle(target)
    assert escapes(target, [r["stdout"] + r["stderr"] for r in results], listener) == []
    for (name, (_, statuses)), result in zip(hogs.items(), results[len(ATTACK_NAMES) :], strict=True):
        assert result["status"] in statuses, (name, result)
        assert result["isolation"] == "bwrap"
    shutil.rmtree(folder)


@pytest.mark.slow
@needs_unprivileged_caller
def test_the_unsafe_opt_in_warns_loudly_and_still_limits_resources() -> None:
    hogs = ["infinite loop", "memory hog", "huge output"]
    answer = _run_unprivileged(["print('ok')", *(RESOURCE_HOGS[h][0] for h in hogs)], "unsafe-none")
    assert any("UNSAFE" in w and "NO isolation" in w for w in answer["warnings"])
    ok, *rest = answer["results"]
    assert ok["status"] == "passed" and ok["isolation"] == "unsafe-none"
    assert "mount-namespace" not in ok["protections"]
    for name, result in zip(hogs, rest, strict=True):
        assert result["status"] in RESOURCE_HOGS[name][1], (name, result)


def test_attack_list_covers_the_issue() -> None:
    names = set(ATTACK_NAMES) | set(RESOURCE_HOGS)
    for required in (
        "infinite loop",
        "fork bomb",
        "memory hog",
        "huge file",
        "filling the disk",
        "huge output",
        "in process",  # network, ~/.ssh, /etc/shadow, writes outside
        "killing the parent",
        "subprocess",
        "os.posix_spawn",
        "ctypes libc system",
        "ctypes fork and execv",
        "raw fork syscall",
    ):
        assert required in names
    assert sys.platform == "linux"
