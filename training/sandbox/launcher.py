"""Bootstrap that runs inside the sandbox before the untrusted program.

Executed as a script by the sandboxed interpreter (standard library only, never imported by the
package): it drops root privileges to an unprivileged uid when started as root, forbids gaining
privileges again, applies the resource limits, optionally installs an audit hook that blocks
sockets, process control and file access outside the allowed directories (the weak fallback when
no namespace isolation exists), and then runs the program as ``__main__``.

Usage: python -I launcher.py CONFIG_JSON
CONFIG_JSON keys: program (path), rlimits ({name: [soft, hard]}), drop_uid (int or null),
guard (null or {"read": [dirs], "write": [dirs]}).
"""

import json
import os
import resource
import signal
import sys

# Audit events refused outright when the guard is on.
_BLOCKED_EVENTS = frozenset(
    {
        "socket.__new__",
        "socket.connect",
        "socket.bind",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.startfile",
        "os.killpg",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.cdata",
        "mmap.__new__",
        "os.chroot",
    }
)
# Audit events whose first argument is a path that gets modified.
_WRITE_PATH_EVENTS = frozenset(
    {
        "os.remove",
        "os.rmdir",
        "os.mkdir",
        "os.rename",
        "os.chmod",
        "os.chown",
        "os.symlink",
        "os.link",
        "os.truncate",
        "os.utime",
    }
)
# Refused when the process-count limit cannot be enforced (programs running as root).
_FORK_EVENTS = frozenset({"os.fork", "os.forkpty", "_thread.start_new_thread"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _drop_privileges(uid):
    """Become ``uid`` (no supplementary groups) and forbid regaining privileges through exec."""
    if os.getuid() == 0 and uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    except (ImportError, OSError, AttributeError):
        pass


def _on_cpu_limit(signum, frame):
    sys.stderr.write("\nsandbox: CPU-time limit reached\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def _apply_limits(rlimits):
    for name, (soft, hard) in rlimits.items():
        resource.setrlimit(getattr(resource, name), (int(soft), int(hard)))


def _install_guard(read_roots, write_roots, no_fork):
    read_roots = tuple(os.path.realpath(p) for p in read_roots)
    write_roots = tuple(os.path.realpath(p) for p in write_roots)
    own_pid = os.getpid()

    def inside(path, roots):
        if isinstance(path, int):
            return True
        real = os.path.realpath(os.fsdecode(path))
        return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or (
                mode is None and bool(flags & _WRITE_FLAGS)
            )
            if not inside(path, write_roots if writing else read_roots + write_roots):
                raise PermissionError(f"sandbox: access to {path!r} is not allowed")
        elif event in _WRITE_PATH_EVENTS:
            if not inside(args[0], write_roots):
                raise PermissionError(f"sandbox: {event} on {args[0]!r} is not allowed")
        elif event == "os.kill":
            if args[0] not in (own_pid, 0):
                raise PermissionError("sandbox: signalling other processes is not allowed")
        elif event in _BLOCKED_EVENTS or (no_fork and event in _FORK_EVENTS):
            raise PermissionError(f"sandbox: {event} is not allowed")

    sys.addaudithook(hook)


def main():
    config = json.loads(sys.argv[1])
    _drop_privileges(config.get("drop_uid"))
    _apply_limits(config["rlimits"])
    signal.signal(signal.SIGXCPU, _on_cpu_limit)
    program = config["program"]
    with open(program, encoding="utf-8") as f:
        source = f.read()
    guard = config.get("guard")
    if guard:
        _install_guard(guard["read"], guard["write"], guard.get("no_fork", False))
    code = compile(source, program, "exec")
    sys.argv = [program]
    namespace = {"__name__": "__main__", "__file__": program, "__builtins__": __builtins__}
    del config, source
    exec(code, namespace)


if __name__ == "__main__":
    main()
