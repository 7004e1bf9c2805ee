"""Bootstrap that runs inside the sandbox before the untrusted program.

Executed as a script by the sandboxed interpreter (standard library only, never imported by the
package): it drops root privileges to an unprivileged uid when started as root, forbids gaining
privileges again, applies the resource limits and runs the program as ``__main__``. It enforces
nothing else: the isolation is the kernel's (namespaces, uid, rlimits, cgroup), set up by the
caller, never a hook in this interpreter that the program could bypass.

Usage: python -I launcher.py CONFIG_JSON
CONFIG_JSON keys: program (path), rlimits ({name: [soft, hard]}), drop_uid (int or null).
"""

import json
import os
import resource
import signal
import sys


def _drop_privileges(uid):
    """Become ``uid`` (no supplementary groups) and forbid regaining privileges through exec."""
    if os.getuid() == 0 and uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    if os.geteuid() == 0 or os.getuid() == 0:
        sys.stderr.write("sandbox: refusing to run the program as root\n")
        sys.exit(125)
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


def main():
    config = json.loads(sys.argv[1])
    _drop_privileges(config.get("drop_uid"))
    _apply_limits(config["rlimits"])
    signal.signal(signal.SIGXCPU, _on_cpu_limit)
    program = config["program"]
    with open(program, encoding="utf-8") as f:
        source = f.read()
    code = compile(source, program, "exec")
    sys.argv = [program]
    namespace = {"__name__": "__main__", "__file__": program, "__builtins__": __builtins__}
    del config, source
    exec(code, namespace)


if __name__ == "__main__":
    main()
