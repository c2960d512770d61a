"""The `aether` command, end to end: every test runs `python -m aether_native ...` in a subprocess.

Ground truth comes from the target programs themselves: what they print (argv, __name__, sys.path),
the status they exit with, the traceback plain `python` prints for them, and CPU time they burn in
known functions (bounded by `time.thread_time`, so the shares do not depend on the machine).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from workloads import cli_env

ROOT = Path(__file__).resolve().parents[1]


if importlib.util.find_spec("aether_perf") is None:
    sys.path.insert(0, str(ROOT / "python"))

from aether_perf.model import Profile, load  # noqa: E402

ENV = cli_env()
TIMEOUT = 120

HOT_SCRIPT = """\
import json, os, sys, time

def hot(seconds):
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        n += 1
    return n

def cold():
    return sum(range(1000))

if __name__ == "__main__":
    hot(float(os.environ.get("HOT_SECONDS", "0.4")))
    cold()
    print(json.dumps({"name": __name__, "argv": sys.argv, "path0": sys.path[0], "file": __file__}))
"""


def aether(args: Sequence[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aether_native", *args],
        cwd=cwd,
        env=kwargs.pop("env", ENV),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        **kwargs,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def self_share(profile: Profile, function: str) -> float:
    """Percent of the profile's weight with `function` as the innermost frame."""
    stats = {stat.function: stat for stat in profile.top_functions(None)}
    return stats[function].self_pct if function in stats else 0.0


def function_samples(profile: Profile, function: str) -> int:
    stats = {stat.function: stat for stat in profile.top_functions(None)}
    return stats[function].self_samples if function in stats else 0


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aether: error: "), result.stderr
    assert "Traceback" not in result.stderr


# -- running the target --------------------------------------------------------------------------


def test_script_runs_as_main_with_its_own_argv_and_stdout(tmp_path: Path) -> None:
    script = write(tmp_path / "sub" / "prog.py", HOT_SCRIPT)
    out = tmp_path / "out.aprof"
    # Options after the script name are the script's, even ones that look like ours.
    result = aether(["profile", "-o", str(out), "sub/prog.py", "a", "--interval", "5", "-m", "x"], tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)  # stdout holds exactly what the program printed
    assert seen == {
        "name": "__main__",
        "argv": ["sub/prog.py", "a", "--interval", "5", "-m", "x"],
        "path0": str(script.parent),
        "file": str(script),
    }
    assert "hot" in result.stderr  # the summary goes to stderr
    assert f"wrote aprof profile to {out}" in result.stderr
    profile = load(out)
    assert profile.meta.mode == "cpu"
    assert self_share(profile, "hot") > 80
    # The runner's frames are trimmed: the program's stacks start at its own <module>.
    module_frames = {
        i for i, f in enumerate(profile.frames) if f.function == "<module>" and f.file == str(script)
    }
    hot_frames = {i for i, f in enumerate(profile.frames) if f.function == "hot"}
    hot_stacks = [s for s in profile.stacks if hot_frames & set(s)]
    assert hot_stacks and all(s[0] in module_frames for s in hot_stacks)
    assert not any(
        "aether_native" in f.file and "cli" in f.file
        for s in hot_stacks
        for f in map(profile.frames.__getitem__, s)
    )


def test_module_runs_as_main(tmp_path: Path) -> None:
    write(tmp_path / "mypkg" / "__init__.py", "")
    tool = write(tmp_path / "mypkg" / "tool.py", HOT_SCRIPT)
    write(tmp_path / "mypkg" / "__main__.py", "import sys\nprint('package main', sys.argv[1:])\n")
    result = aether(["profile", "-o", "m.aprof", "-m", "mypkg.tool", "a", "-b", "--top", "1"], tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["name"] == "__main__"
    assert seen["argv"] == [str(tool), "a", "-b", "--top", "1"]  # argv[0] is the module's file, as python -m
    assert seen["path0"] == str(tmp_path)
    assert self_share(load(tmp_path / "m.aprof"), "hot") > 80

    result = aether(["profile", "-q", "-o", "p.aprof", "-m", "mypkg", "x"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "package main ['x']\n", "")
    result = aether(["profile", "-q", "-o", "p.aprof", "--", "-m", "mypkg", "y"], tmp_path)
    assert (result.returncode, result.stdout) == (0, "package main ['y']\n")


def test_target_option_spelling(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", HOT_SCRIPT)
    result = aether(["profile", "--target", "prog.py", "-o", "t.aprof", "--", "a", "b"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["argv"] == ["prog.py", "a", "b"]
    assert self_share(load(tmp_path / "t.aprof"), "hot") > 80


def test_directory_and_zip_targets_run_their_main(tmp_path: Path) -> None:
    app = write(tmp_path / "app" / "__main__.py", HOT_SCRIPT)
    with zipfile.ZipFile(tmp_path / "app.pyz", "w") as archive:
        archive.write(app, "__main__.py")
    for entry in ("app", "app.pyz"):
        plain = subprocess.run([sys.executable, entry, "x"], capture_output=True, text=True, cwd=tmp_path)
        result = aether(["profile", "-q", "-o", "app.aprof", entry, "x"], tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == json.loads(plain.stdout)  # argv, __file__, sys.path[0]
        assert self_share(load(tmp_path / "app.aprof"), "hot") > 80


@pytest.mark.parametrize(
    ("ending", "status", "message"),
    [
        ("raise SystemExit(3)", 3, None),
        ("sys.exit(0)", 0, None),
        ("pass", 0, None),
        ("sys.exit(None)", 0, None),
        ("sys.exit('fatal: bad config')", 1, "fatal: bad config"),
    ],
)
def test_exit_status_is_preserved(tmp_path: Path, ending: str, status: int, message: str | None) -> None:
    write(tmp_path / "prog.py", f"import sys\nprint('before exit')\n{ending}\nprint('not reached')\n")
    result = aether(["profile", "-o", "x.aprof", "prog.py"], tmp_path)
    assert result.returncode == status, result.stderr
    assert result.stdout == ("before exit\nnot reached\n" if ending == "pass" else "before exit\n")
    if message is not None:
        assert result.stderr.splitlines()[0] == message  # printed first, as python does
    assert "Traceback" not in result.stderr
    load(tmp_path / "x.aprof")  # written whatever the status


def test_uncaught_exception_prints_the_users_traceback(tmp_path: Path) -> None:
    script = write(
        tmp_path / "prog.py",
        """\
        import time

        def user_failure():
            end = time.thread_time() + 0.3
            while time.thread_time() < end:
                pass
            raise ValueError("boom from user code")

        user_failure()
        """,
    )
    plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert plain.returncode == 1 and plain.stderr.startswith("Traceback")

    result = aether(["profile", "-o", "err.aprof", str(script)], tmp_path)
    assert result.returncode == 1
    # Exactly the traceback python prints: the user's frames only, none of the runner's.
    assert result.stderr.startswith(plain.stderr), result.stderr
    assert "in user_failure" in plain.stderr and "runpy" not in plain.stderr
    profile = load(tmp_path / "err.aprof")
    assert self_share(profile, "user_failure") > 80
    assert profile.meta.extra["exit_status"] == 1


def test_syntax_error_in_target(tmp_path: Path) -> None:
    script = write(tmp_path / "bad.py", "def broken(:\n    pass\n")
    plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    result = aether(["profile", "-q", "-o", "s.aprof", str(script)], tmp_path)
    assert result.returncode == 1
    assert result.stderr == plain.stderr


def test_duration_stops_sampling_but_not_the_program(tmp_path: Path) -> None:
    write(
        tmp_path / "long.py",
        """\
        import time

        def busy(seconds):
            end = time.thread_time() + seconds
            while time.thread_time() < end:
                pass

        busy(1.5)
        print("END-MARKER")
        """,
    )
    started = time.monotonic()
    result = aether(["profile", "--duration", "0.3s", "-o", "d.aprof", "long.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "END-MARKER\n"
    assert time.monotonic() - started >= 1.5
    profile = load(tmp_path / "d.aprof")
    assert 0.25 <= profile.meta.duration <= 0.7, profile.meta.duration
    assert len(profile) > 0 and int(profile.time_ns.max()) < 0.7e9
    assert self_share(profile, "busy") > 80
    assert "sampling stopped after" in result.stderr


def test_duration_timer_is_not_in_a_wall_profile(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", HOT_SCRIPT)
    env = {**ENV, "HOT_SECONDS": "0.6"}
    result = aether(
        ["profile", "--mode", "wall", "--duration", "0.2s", "-q", "-o", "w.aprof", "prog.py"],
        tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    profile = load(tmp_path / "w.aprof")
    assert [info.name for info in profile.threads.values()] == ["MainThread"], profile.threads
    assert self_share(profile, "hot") > 80


def test_forked_child_ends_like_under_python(tmp_path: Path) -> None:
    write(
        tmp_path / "forks.py",
        """\
        import os

        pid = os.fork()
        if pid == 0:
            print("child", flush=True)
        else:
            _, status = os.waitpid(pid, 0)
            print("parent; child exited", os.waitstatus_to_exitcode(status), flush=True)
        """,
    )
    result = aether(["profile", "-o", "f.aprof", "forks.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "child\nparent; child exited 0\n"
    assert result.stderr.count("aether: wrote") == 1  # the parent's profile only
    assert "error" not in result.stderr
    load(tmp_path / "f.aprof")


def test_ctrl_c_stops_the_target_and_still_writes_the_profile(tmp_path: Path) -> None:
    write(
        tmp_path / "spin.py",
        """\
        import time

        def spin_forever():
            end = time.monotonic() + 60
            while time.monotonic() < end:
                pass

        print("ready", flush=True)
        spin_forever()
        """,
    )

    def terminal_like() -> None:  # a background job may inherit SIGINT ignored; a terminal does not
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen(
        [sys.executable, "-m", "aether_native", "profile", "-o", "int.aprof", "spin.py"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=terminal_like,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.4)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "KeyboardInterrupt" in stderr
    assert "wrote aprof profile to int.aprof" in stderr
    profile = load(tmp_path / "int.aprof")
    assert function_samples(profile, "spin_forever") > 50
    assert profile.meta.extra["exit_status"] == 130


def test_waits_for_the_programs_threads(tmp_path: Path) -> None:
    write(
        tmp_path / "threads.py",
        """\
        import threading, time

        def worker_hot():
            end = time.thread_time() + 0.3
            while time.thread_time() < end:
                pass
            print("worker done", flush=True)

        threading.Thread(target=worker_hot, name="worker").start()
        print("main done", flush=True)
        """,
    )
    result = aether(["profile", "-o", "th.aprof", "threads.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "main done\nworker done\n"
    profile = load(tmp_path / "th.aprof")
    assert self_share(profile, "worker_hot") > 70
    assert "worker" in {info.name for info in profile.threads.values()}


def test_mode_and_interval_reach_the_sampler(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", HOT_SCRIPT)
    result = aether(
        ["profile", "--mode", "wall", "--interval", "2ms", "-q", "-o", "w.aprof", "prog.py"], tmp_path
    )
    assert (result.returncode, result.stderr) == (0, "")
    profile = load(tmp_path / "w.aprof")
    assert profile.meta.mode == "wall"
    assert profile.meta.interval == pytest.approx(0.002)
    assert profile.meta.program == "prog.py"


# -- output files ---------------------------------------------------------------------------------


def test_output_format_from_suffix_or_option(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", HOT_SCRIPT)
    result = aether(["profile", "-q", "-o", "run.json", "prog.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "run.json").read_text())
    assert "speedscope" in document["$schema"]
    assert any(frame["name"] == "hot" for frame in document["shared"]["frames"])

    for args in (["-o", "run.txt"], ["-o", "run.data", "--format", "collapsed"]):
        result = aether(["profile", "-q", *args, "prog.py"], tmp_path)
        assert result.returncode == 0, result.stderr
        lines = (tmp_path / args[1]).read_text().splitlines()
        assert lines and all(re.fullmatch(r".+ \d+", line) for line in lines), lines
        assert any(line.split(" ")[0].endswith("hot") or ";hot " in line for line in lines), lines


def test_default_output_names(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", HOT_SCRIPT)
    result = aether(["profile", "prog.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    [written] = tmp_path.glob("aether-prog-*.aprof")
    assert f"to {written.name} (" in result.stderr
    load(written)
    result = aether(["profile", "-q", "--format", "speedscope", "prog.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    [written] = tmp_path.glob("aether-prog-*.speedscope.json")
    json.loads(written.read_text())


def test_overwriting_a_previous_output_is_fine(tmp_path: Path) -> None:
    write(tmp_path / "prog.py", HOT_SCRIPT)
    for _ in range(2):
        result = aether(["profile", "-q", "-o", "same.aprof", "prog.py"], tmp_path)
        assert result.returncode == 0, result.stderr
    load(tmp_path / "same.aprof")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prog.py", "same.aprof"]  # no temporary left


# -- bad input ------------------------------------------------------------------------------------

MARKER_SCRIPT = "open('ran.marker', 'w').close()\n"


@pytest.mark.parametrize(
    "args",
    [
        ["profile", "--bogus", "prog.py"],
        ["profile", "--interval", "10us", "prog.py"],
        ["profile", "--interval", "abc", "prog.py"],
        ["profile", "--interval", "0", "prog.py"],
        ["profile", "--interval", "-1ms", "prog.py"],
        ["profile", "--interval", "2s", "prog.py"],
        ["profile", "--duration", "0", "prog.py"],
        ["profile", "--mode", "gpu", "prog.py"],
        ["profile", "--duration", "soon", "prog.py"],
        ["profile", "--format", "pdf", "prog.py"],
        ["profile", "--top", "0", "prog.py"],
        ["profile", "missing.py"],
        ["profile", "--target", "prog.py", "-m", "json.tool"],
        ["profile", "--target", "prog.py", "other.py"],
        ["profile", "--demo", "prog.py"],
        ["profile"],
        ["profile", "-o", "out.aprof"],
        ["profile", "-m"],
        ["profile", "-m", "no_such_module_for_aether_tests"],
        ["profile", "-o", "no/such/dir/out.aprof", "prog.py"],
        ["profile", "-o", "prog.py", "prog.py"],
        ["profile", "-o", "-", "prog.py"],
        ["perf-report"],
        ["perf-report", "--input", "missing.aprof"],
        ["perf-report", "--input", "prog.py"],
        ["perf-report", "--input", "."],
        ["perf-report", "--input", "x.aprof", "--format", "html"],
        ["frobnicate"],
        ["--frobnicate"],
        [],
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path: Path, args: list[str]) -> None:
    write(tmp_path / "prog.py", MARKER_SCRIPT)
    result = aether(args, tmp_path)
    assert_one_line_error(result)
    assert not (tmp_path / "ran.marker").exists()  # rejected before the target ran
    assert (tmp_path / "prog.py").read_text() == MARKER_SCRIPT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prog.py"]  # nothing written


# -- perf-report ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("saved")
    write(where / "prog.py", HOT_SCRIPT)
    result = aether(["profile", "-q", "-o", "run.aprof", "prog.py"], where)
    assert result.returncode == 0, result.stderr
    return where / "run.aprof"


def test_perf_report_text(saved: Path) -> None:
    result = aether(["perf-report", "--input", str(saved), "--top", "5"], saved.parent)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if re.search(r"\bhot\b", line)]
    assert rows, result.stdout
    assert float(rows[0].split("%")[0]) > 80  # the first column is hot's self %
    tree = aether(["perf-report", str(saved), "--tree"], saved.parent)
    assert tree.returncode == 0 and "<module>" in tree.stdout and len(tree.stdout) > len(result.stdout) - 200


def test_perf_report_conversions(saved: Path, tmp_path: Path) -> None:
    work = tmp_path / "copy.aprof"
    shutil.copy(saved, work)
    result = aether(["perf-report", "--input", str(work), "--format", "speedscope"], tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "copy.speedscope.json").read_text())
    assert document["profiles"] and "speedscope" in document["$schema"]

    result = aether(["perf-report", "--input", str(work), "--format", "collapsed", "-o", "-"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(re.fullmatch(r".+ \d+", line) for line in lines)
    weights = {line.rsplit(" ", 1)[0].split(";")[-1]: int(line.rsplit(" ", 1)[1]) for line in lines}
    hot = sum(w for leaf, w in weights.items() if leaf.startswith("hot "))
    assert hot / sum(weights.values()) > 0.8

    result = aether(["perf-report", "-i", str(work), "--format", "collapsed", "-o", "c.txt"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "c.txt").read_text() == "\n".join(lines) + "\n"
    assert work.read_bytes() == saved.read_bytes()


def test_perf_report_on_a_truncated_file(saved: Path, tmp_path: Path) -> None:
    data = saved.read_bytes()
    broken = tmp_path / "broken.aprof"
    broken.write_bytes(data[: len(data) // 2])
    for fmt in ("text", "speedscope"):
        result = aether(["perf-report", "--input", str(broken), "--format", fmt], tmp_path)
        assert_one_line_error(result)
        assert "broken.aprof" in result.stderr
        assert broken.read_bytes() == data[: len(data) // 2]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.aprof"]


def test_perf_report_refuses_to_overwrite_its_input(saved: Path, tmp_path: Path) -> None:
    work = tmp_path / "in.aprof"
    shutil.copy(saved, work)
    result = aether(["perf-report", "--input", str(work), "--format", "collapsed", "-o", str(work)], tmp_path)
    assert_one_line_error(result)
    assert work.read_bytes() == saved.read_bytes()


# -- demo, version, help ---------------------------------------------------------------------------


def test_demo_writes_speedscope_and_prints_summary(tmp_path: Path) -> None:
    result = aether(["profile", "--demo"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("demo: ")
    assert "crunch_numbers" in result.stderr and "demo.speedscope.json" in result.stderr
    document = json.loads((tmp_path / "demo.speedscope.json").read_text())
    assert "speedscope" in document["$schema"]
    from aether_perf.export import speedscope

    profile = speedscope.read(tmp_path / "demo.speedscope.json")
    shares = {
        name: self_share(profile, name) for name in ("crunch_numbers", "parse_records", "format_report")
    }
    whole = sum(shares.values())
    assert whole > 80, shares
    for name, expected in (("crunch_numbers", 60), ("parse_records", 30), ("format_report", 10)):
        assert abs(100 * shares[name] / whole - expected) < 8, shares
    assert {"MainThread", "background-poller"} <= {info.name for info in profile.threads.values()}


def test_version_and_help(tmp_path: Path) -> None:
    result = aether(["--version"], tmp_path)
    assert result.returncode == 0
    assert re.fullmatch(r"aether \d+\.\d+\S*\n", result.stdout)
    for args in (["--help"], ["profile", "--help"], ["perf-report", "--help"]):
        result = aether(args, tmp_path)
        assert result.returncode == 0 and result.stdout.startswith("usage:") and result.stderr == ""


# -- argv splitting (in-process) -------------------------------------------------------------------


def test_split_argv() -> None:
    from aether_native.cli.profile_cmd import split_argv

    split = split_argv(["--interval", "2ms", "-q", "prog.py", "--top", "3", "--"])
    assert (split.own, split.script, split.rest) == (
        ["--interval=2ms", "-q"],
        "prog.py",
        ["--top", "3", "--"],
    )
    split = split_argv(["-o", "x", "-mpkg.mod", "-o", "y"])
    assert (split.own, split.module, split.rest) == (["-o=x"], "pkg.mod", ["-o", "y"])
    split = split_argv(["--target", "s.py", "--", "a", "-m", "b"])
    assert (split.own, split.script, split.rest, split.dashdash) == (
        ["--target=s.py"],
        None,
        ["a", "-m", "b"],
        True,
    )


def test_main_returns_the_status_instead_of_exiting(capsys: pytest.CaptureFixture[str]) -> None:
    from aether_native.cli import main

    assert main(["--version"]) == 0
    assert main(["profile", "--interval", "abc", "x.py"]) == 2
    assert main(["perf-report", "--help"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("aether ") and "usage: aether perf-report" in out
    assert err.startswith("aether: error: argument --interval:") and err.count("\n") == 1


def test_profiled_program_starts_without_numpy(tmp_path: Path) -> None:
    """The recorder keeps numpy (and the BLAS threads it starts, which a wall profile would show)
    out of the program it runs: `import aether_native` and the profile command load only the
    light part of the model until the recording is built."""
    write(
        tmp_path / "mods.py",
        """\
        import sys, threading
        print("numpy" in sys.modules, len(threading.enumerate()))
        """,
    )
    result = aether(["profile", "-q", "-o", "m.aprof", "mods.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "1"]
