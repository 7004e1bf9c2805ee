"""Hostile programs for the sandbox tests, and the checks that nothing they tried got out.

Each attack tries the same escape (read a planted secret, ``~/.ssh`` and ``/etc/shadow``, write
files outside, reach a TCP listener of the caller, stay running after the execution) through a
different way of starting code: in-process, ``subprocess``, ``os.posix_spawn``, and C-level
primitives that raise no audit event (libc ``system``, ``fork`` + ``execv``, the raw ``fork``
syscall). Standard library only: the unprivileged-caller test runs it under another interpreter.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Target", "make_target", "attacks", "ATTACK_NAMES", "RESOURCE_HOGS", "escapes", "processes_with"]


@dataclass(frozen=True)
class Target:
    """What the attacks aim at, on the host."""

    marker: str  # unique text in the attackers' command lines and file names
    secret: str  # content of the planted key
    secret_path: str
    outside: tuple[str, ...]  # files the attacks try to create
    port: int  # the caller's loopback TCP listener


def make_target(folder: Path, repo: Path, port: int) -> Target:
    """Plant a secret under ``folder`` and name the files the attacks will try to write."""
    marker = f"sbx{uuid.uuid4().hex[:12]}"
    secret = folder / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(f"PRIVATE KEY {marker}")
    secret.chmod(0o644)  # readable by anyone on the host: only isolation keeps it in
    outside = (str(folder / f"escaped-{marker}"), str(repo / f"escaped-{marker}"), f"/tmp/escaped-{marker}")
    return Target(marker, f"PRIVATE KEY {marker}", str(secret), outside, port)


def _payload(t: Target) -> str:
    """Python source of one escape attempt (one line per try, each allowed to fail)."""
    tries = [
        f"print(open({t.secret_path!r}).read())",
        "print(open(os.path.expanduser('~/.ssh/id_rsa')).read())",
        "print(open('/root/.ssh/id_rsa').read())",
        "print(open('/etc/shadow').read())",
        *(f"open({p!r}, 'w').write('pwned')" for p in t.outside),
        f"socket.create_connection(('127.0.0.1', {t.port}), timeout=1).sendall(b'pwned')",
        "socket.create_connection(('1.1.1.1', 53), timeout=1)",
    ]
    body = "\n".join(
        f"try:\n    {line}\nexcept BaseException as e:\n    print('blocked', type(e).__name__)"
        for line in tries
    )
    return f"import os, socket\n{body}\n"


def _stay(t: Target) -> str:
    """Source that detaches and keeps running (its command line carries the marker)."""
    return (
        f"import os, time\ntry:\n    os.setsid()\nexcept OSError:\n    pass\ntime.sleep(600)  # {t.marker}\n"
    )


def attacks(t: Target) -> dict[str, str]:
    """Attack name -> program."""
    payload, stay = _payload(t), _stay(t)
    return {
        "in process": payload,
        "subprocess": (
            "import subprocess, sys\n"
            f"subprocess.run([sys.executable, '-c', {payload!r}])\n"
            f"subprocess.Popen([sys.executable, '-c', {stay!r}], start_new_session=True)\n"
        ),
        "os.posix_spawn": (
            "import os, sys\n"
            f"pid = os.posix_spawn(sys.executable, [sys.executable, '-c', {payload!r}], dict(os.environ))\n"
            "os.waitpid(pid, 0)\n"
            f"os.posix_spawn(sys.executable, [sys.executable, '-c', {stay!r}], dict(os.environ))\n"
        ),
        "ctypes libc system": (
            "import ctypes, shlex, sys\n"
            "libc = ctypes.CDLL(None)\n"
            f"print('system', libc.system(shlex.join([sys.executable, '-c', {payload!r}]).encode()))\n"
            f"libc.system((shlex.join([sys.executable, '-c', {stay!r}]) + ' &').encode())\n"
        ),
        "ctypes fork and execv": (
            "import ctypes, os, sys\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "def spawn(src):\n"
            "    argv = (ctypes.c_char_p * 4)(sys.executable.encode(), b'-c', src.encode(), None)\n"
            "    pid = libc.fork()\n"
            "    if pid == 0:\n"
            "        libc.execv(sys.executable.encode(), argv)\n"
            "        libc._exit(127)\n"
            "    return pid\n"
            f"os.waitpid(spawn({payload!r}), 0)\n"
            f"spawn({stay!r})\n"
        ),
        "raw fork syscall": (
            "import ctypes, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "pid = libc.syscall(57)  # SYS_fork on x86-64: no audit event, no Python fork handlers\n"
            "if pid == 0:\n"
            f"    exec({payload!r})\n"
            f"    exec({stay!r})\n"
            "import time\n"
            "time.sleep(1)  # the child has tried; it keeps running when this process ends\n"
        ),
        "killing the parent": (
            "import os, signal\n"
            "for pid in (os.getppid(), 1, -1):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "    except OSError as e:\n"
            "        print('blocked', e)\n"
            f"os.kill({os.getpid()}, signal.SIGKILL)\n"
        ),
        "daemonised child": (
            "import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            f"        exec({stay!r})\n"
            "    os._exit(0)\n"
            "print('parent done')\n"
        ),
    }


ATTACK_NAMES = tuple(attacks(Target("m", "s", "/s", (), 1)))

# Programs that exhaust a resource, and the statuses each may end with.
RESOURCE_HOGS: dict[str, tuple[str, set[str]]] = {
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
    "memory spread over processes": (
        # Each child stays under the per-process limit; together they exceed the execution's.
        "import os, time\n"
        "kids = []\n"
        "for _ in range(8):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        block = bytearray(96 * 1024 * 1024)\n"
        "        block[::4096] = b'x' * len(block[::4096])\n"
        "        time.sleep(2)\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "killed = [os.waitpid(k, 0)[1] & 0x7F for k in kids]\n"
        "raise SystemExit(1 if any(killed) else 0)\n",
        {"memory_limit"},
    ),
    "huge output": ("import sys\nwhile True:\n    sys.stdout.write('spam' * 4096)\n", {"output_limit"}),
    "huge file": (
        "with open('big.bin', 'wb') as f:\n    f.write(b'0' * (64 * 1024 * 1024))\n",
        {"file_size_limit"},
    ),
    "filling the disk": (
        "i = 0\nwhile True:\n    open(f'/tmp/f{i}', 'wb').write(b'0' * (4 * 1024 * 1024))\n    i += 1\n",
        {"failed", "memory_limit"},
    ),
}


def processes_with(marker: str) -> list[int]:
    """Pids of processes on the host whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def escapes(t: Target, outputs: list[str], listener: socket.socket) -> list[str]:
    """Everything that got out: leaked secrets, files written, connections made, processes left."""
    found = []
    for text in outputs:
        if t.secret in text:
            found.append("the planted secret was read")
        if "root:" in text:
            found.append("/etc/shadow was read")
        if "BEGIN" in text and "PRIVATE KEY" in text:
            found.append("a real private key was read")
    found += [f"{p} was written" for p in t.outside if os.path.exists(p)]
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
        conn.close()
        found.append("the caller's loopback listener was reached")
    except BlockingIOError:
        pass
    found += [f"process {pid} is still running" for pid in processes_with(t.marker)]
    return found
