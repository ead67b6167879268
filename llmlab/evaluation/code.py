"""Functional correctness of generated code: pass@k and running a candidate against tests in a sandboxed subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Sequence

from llmlab import validate as V


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k)/C(n, k), as a stable product 1 - prod(1 - k/i), i=n-c+1..n.

    >>> round(pass_at_k(n=10, c=3, k=1), 4)
    0.3
    >>> round(pass_at_k(n=10, c=3, k=5), 4)
    0.9167
    """
    V.integer("n", n, low=1)
    V.integer("c", c, low=0, high=n)
    V.integer("k", k, low=1, high=n)
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def pass_at_k_biased(n: int, c: int, k: int) -> float:
    """The biased estimate 1 - (1 - c/n)^k (sampling with replacement): too low for k > 1; shown to compare."""
    V.integer("n", n, low=1)
    V.integer("c", c, low=0, high=n)
    V.integer("k", k, low=1)
    return 1.0 - (1.0 - c / n) ** k


def mean_pass_at_k(results: Sequence[Sequence[bool]], k: int) -> float:
    """pass@k averaged over problems; results[i] holds whether each of problem i's n candidates passed.

    >>> mean_pass_at_k([[True, False], [False, False]], k=1)
    0.25
    """
    V.non_empty("results", results)
    return sum(pass_at_k(len(r), sum(bool(x) for x in r), k) for r in results) / len(results)


_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.DOTALL)


def extract_code(reply: str) -> str:
    """The code in a model reply: the first ```python fenced block if any, else the whole reply.

    >>> extract_code("Here:\\n```python\\ndef f():\\n    return 1\\n```\\nDone.")
    'def f():\\n    return 1'
    """
    V.text("reply", reply, allow_empty=True)
    match = _FENCE.search(reply)
    return (match.group(1) if match else reply).strip("\n")


@dataclass(frozen=True)
class Execution:
    """What running one candidate did: passed, why not ('ok', 'failed', 'timeout', 'error'), output tail, seconds."""

    passed: bool
    status: str
    output: str
    seconds: float


def _limits(memory_mb: int, cpu_seconds: int):
    """A preexec_fn that caps address space, CPU time, file size and process count in the child (POSIX)."""

    def apply() -> None:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        if hasattr(resource, "RLIMIT_NPROC") and os.getuid() != 0:
            resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # no fork bombs: the child may not start processes
        os.setsid()

    return apply


_GUARD = """\
import os as _os, sys as _sys
_BLOCKED = ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname", "subprocess.Popen",
            "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.kill", "os.chdir")
_WRITE_FLAGS = _os.O_WRONLY | _os.O_RDWR | _os.O_CREAT | _os.O_APPEND | _os.O_TRUNC
def _sandbox(event, args, _os=_os, _home=_os.path.realpath(_os.getcwd()) + _os.sep, _blocked=_BLOCKED,
             _write_flags=_WRITE_FLAGS):
    if event in _blocked:
        raise PermissionError(f"{event} is not allowed in the llmlab sandbox")
    if event == "open" and not isinstance(args[0], int):
        mode, flags = args[1] or "", args[2] or 0
        writing = any(c in mode for c in "wax+") or flags & _write_flags
        if writing and not _os.path.realpath(_os.fsdecode(args[0])).startswith(_home):
            raise PermissionError(f"writing outside the sandbox folder is not allowed: {args[0]!r}")
_sys.addaudithook(_sandbox)
del _os, _sys, _sandbox, _BLOCKED, _WRITE_FLAGS
"""


def run_candidate(code: str, tests: str, timeout: float = 5.0, memory_mb: int = 512) -> Execution:
    """Run candidate code then its test code in a fresh `python -I` subprocess, in an empty temporary directory,
    with a wall-clock timeout, memory/CPU/file-size limits (setrlimit) and an audit hook that refuses network,
    new processes and writes outside that directory.

    This is a guard against accidents (infinite loops, runaway memory), not a security boundary: run untrusted code
    from the internet in a container or VM.
    """
    V.text("code", code, allow_empty=True)
    V.text("tests", tests)
    V.number("timeout", timeout, low=0.0, low_open=True, high=120.0)
    V.integer("memory_mb", memory_mb, low=64)
    program = _GUARD + "\n" + code + "\n\n" + tests + "\n"
    env = {"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="llmlab-sandbox-") as folder:
        path = os.path.join(folder, "candidate.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(program)
        preexec = _limits(memory_mb, max(1, int(timeout) + 1)) if os.name == "posix" else None
        try:
            proc = subprocess.run([sys.executable, "-I", "-S", path], cwd=folder, env=env, capture_output=True,
                                  text=True, timeout=timeout, preexec_fn=preexec, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return Execution(False, "timeout", f"killed after {timeout:g} s", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    output = (proc.stdout + proc.stderr)[-500:]
    if proc.returncode == 0:
        return Execution(True, "ok", output, seconds)
    status = "failed" if "AssertionError" in proc.stderr else "error"
    return Execution(False, status, output, seconds)


def run_candidates(jobs: Sequence[tuple[str, str]], timeout: float = 5.0, memory_mb: int = 512,
                   workers: int = 2) -> list[Execution]:
    """run_candidate for each (code, tests) pair, `workers` subprocesses at a time; results in input order."""
    from concurrent.futures import ThreadPoolExecutor

    V.non_empty("jobs", jobs)
    V.integer("workers", workers, low=1, high=64)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: run_candidate(job[0], job[1], timeout, memory_mb), jobs))
