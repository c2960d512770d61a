"""`aether load --profile-target "server.py ARGS"`: run the system under test under the profiler.

The target (a Python script and its arguments, or ``-m module ...``) runs in a child
``python -m aether_native profile --mode wall -o PROFILE -- ...``: the sampler starts inside the
target process, as the issue asks, and the profile lands beside the load report. The load starts
once the target accepts TCP connections on the scenario's host and port; when the load ends the
target gets SIGINT (as from Ctrl-C), `aether profile` stops sampling and writes the profile.
The target's own output and the profiler's summary go to a log file next to the profile.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from aether_native.cli.errors import RunError, UsageError

__all__ = ["ProfiledTarget"]

#: How long the target may take to accept connections.
READY_TIMEOUT = 30.0
#: How long the profiler may take to write the profile after SIGINT.
STOP_TIMEOUT = 60.0


class ProfiledTarget:
    """``with ProfiledTarget(command, host, port, profile_path):`` the target runs, profiled."""

    def __init__(self, command: str, host: str, port: int, profile: Path) -> None:
        argv = shlex.split(command)
        if not argv:
            raise UsageError("--profile-target needs a script (and its arguments) to run")
        if argv[0] != "-m" and not Path(argv[0]).is_file():
            raise UsageError(f"--profile-target: script '{argv[0]}' does not exist")
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise UsageError(f"--profile-target runs the target on this machine; the host is {host!r}")
        self.argv = argv
        self.host, self.port = host, port
        self.profile = profile
        self.log = profile.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def __enter__(self) -> ProfiledTarget:
        if _accepts(self.host, self.port):
            raise UsageError(f"--profile-target: something already listens on {self.host}:{self.port}")
        command = [sys.executable, "-m", "aether_native", "profile", "--mode", "wall"]
        command += ["-o", str(self.profile)]
        command += ["-m", *self.argv[1:]] if self.argv[0] == "-m" else ["--", *self.argv]
        self._log_file = open(self.log, "wb")  # closed by stop()
        self.proc = subprocess.Popen(
            command, stdout=self._log_file, stderr=subprocess.STDOUT, env=dict(os.environ)
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while not _accepts(self.host, self.port):
            if self.proc.poll() is not None:
                self._close_log()
                status = self.proc.returncode
                raise RunError(f"the profiled target exited with status {status} (see {self.log})")
            if time.monotonic() > deadline:
                self.stop()
                where = f"{self.host}:{self.port}"
                raise RunError(f"the profiled target did not listen on {where} (see {self.log})")
            time.sleep(0.05)
        return self

    def stop(self) -> bool:
        """Interrupt the target and wait for the profile; True when it was written."""
        if self.proc is None:
            return False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()
        return self.profile.exists()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
