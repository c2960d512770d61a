"""Who measured: the machine, the Python, and the git commit of the benchmarked tree."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

from aether_perf.bench.results import Identity

__all__ = ["current_identity", "git_info"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(directory: Path) -> tuple[str | None, str | None, bool | None]:
    """(commit, branch, dirty) of the repository holding ``directory``; Nones outside one."""
    commit = _git(directory, "rev-parse", "HEAD")
    if commit is None:
        return None, None, None
    branch = _git(directory, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return commit, branch, None if status is None else bool(status)


def current_identity(directory: Path | None = None, python: str | None = None) -> Identity:
    """This machine, the interpreter ``python`` (default: this one) and ``directory``'s git state."""
    hostname = socket.gethostname()
    cpu_model = _cpu_model()
    cpu_count = os.cpu_count() or 1
    if python is None or os.path.realpath(python) == os.path.realpath(sys.executable):
        implementation = platform.python_implementation()
        version = platform.python_version()
        executable = sys.executable
    else:
        done = subprocess.run(
            [
                python,
                "-c",
                "import platform;print(platform.python_implementation(), platform.python_version())",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        implementation, version = done.stdout.split()
        executable = python
    commit, branch, dirty = git_info(directory or Path.cwd())
    return Identity(
        machine_id=f"{hostname}/{cpu_model}/{cpu_count}cpu",
        hostname=hostname,
        cpu_model=cpu_model,
        cpu_count=cpu_count,
        platform=f"{platform.system()}-{platform.release()}-{platform.machine()}",
        python_implementation=implementation,
        python_version=version,
        python_executable=executable,
        git_commit=commit,
        git_branch=branch,
        git_dirty=dirty,
    )
