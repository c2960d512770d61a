"""Safety: the sampler must never crash or change the behaviour of the program it samples.

Every test here runs its program in a child interpreter, so a crash is a test failure (with the
child's faulthandler output), not a dead pytest:
- stress: 10 kHz sampling while code objects are created and destroyed; every reported frame
  must name code that existed (no garbage, no freed-and-reused code object under a wrong name);
- fork under sampling;
- EINTR: sleeps, pipe reads, socket timeouts, select/poll, lock timeouts and subprocesses behave
  the same with and without the sampler;
- other signal users: setitimer/SIGPROF, SIGALRM, SIGUSR1, a handler on the sampler's own
  signal (chained), faulthandler.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import workloads
from workloads import describe, run_script

# -- 6. stress --------------------------------------------------------------------------------------

STRESS_PROGRAM = textwrap.dedent(
    '''
    import gc, itertools, json, os, sys, threading, time
    import aether_native

    DURATION = float(sys.argv[1])
    OUT = sys.argv[2]
    SCRIPT = os.path.abspath(__file__)

    # Compiled afresh for every round under its own file name "<stress-N>": its code objects
    # (functions, a class body and method, a generator, a genexpr, a lambda and, on 3.11, a
    # list comprehension) die when the round's namespace goes. Much of the time is spent entering
    # Python code from C (exec, sum over a generator, map): the interpreter's frame push.
    TEMPLATE = """\\
    def exec_fn_{i}(n):
        total = 0
        for k in range(n):
            total += k ^ {i}
        return total


    class DynClass_{i}:
        scale = {i}

        def method_{i}(self, n):
            return sum(k * self.scale for k in range(n))


    def gen_{i}(n):
        for k in range(n):
            yield k + {i}


    def tiny_{i}(x):
        return x + {i}


    lambda_{i} = lambda n: sum([k for k in range(n)])
    result_{i} = exec_fn_{i}(N)
    """
    TEMPLATE_LINES = TEMPLATE.count("\\n")

    expected = {}          # file name -> qualnames of every code object compiled under it
    expected_lock = threading.Lock()
    counter = itertools.count()
    stop_at = 0.0


    def qualnames(code):
        names = {code.co_qualname}
        for const in code.co_consts:
            if hasattr(const, "co_qualname"):
                names |= qualnames(const)
        return names


    def run_round(i, n):
        filename = f"<stress-{i}>"
        code = compile(TEMPLATE.format(i=i), filename, "exec")
        with expected_lock:
            expected[filename] = sorted(qualnames(code))
        namespace = {"N": n}
        exec(code, namespace)
        namespace[f"exec_fn_{i}"](n)
        instance = namespace[f"DynClass_{i}"]()
        getattr(instance, f"method_{i}")(n)
        sum(namespace[f"gen_{i}"](n))
        namespace[f"lambda_{i}"](n)
        sum(map(namespace[f"tiny_{i}"], range(n)))   # n calls into Python from C
        made = type(f"TypeMade_{i}", (namespace[f"DynClass_{i}"],), {"tag": i})
        getattr(made(), f"method_{i}")(n // 4)
        local_lambdas = [lambda x, k=k: x * k for k in range(8)]
        sum(f(3) for f in local_lambdas)
        del namespace, instance, made, code


    def worker_loop(rounds):
        for _ in range(rounds):
            run_round(next(counter), 1500)


    def spawner():
        started = 0
        live = []
        while time.monotonic() < stop_at:
            live = [t for t in live if t.is_alive()]
            if len(live) < 2:
                t = threading.Thread(target=worker_loop, args=(20,), name=f"stress-worker-{started}")
                t.start()
                live.append(t)
                started += 1
            else:
                time.sleep(0.002)
        for t in live:
            t.join()
        return started


    def main():
        global stop_at
        box = {}
        stop_at = time.monotonic() + DURATION
        sampler = aether_native.Sampler("100us", "cpu").start()
        spawn = threading.Thread(target=lambda: box.setdefault("started", spawner()), name="stress-spawner")
        spawn.start()
        rounds = 0
        while time.monotonic() < stop_at:
            run_round(next(counter), 2000)
            rounds += 1
            if rounds % 25 == 0:
                gc.collect()
        spawn.join()
        profile = sampler.stop()
        with open(SCRIPT) as f:
            expected[SCRIPT] = sorted(qualnames(compile(f.read(), SCRIPT, "exec")))
        samples_per_stack = [0] * len(profile.stacks)
        for s in profile.stack.tolist():
            samples_per_stack[s] += 1
        with open(OUT, "w") as f:
            json.dump({
                "script": SCRIPT,
                "template_lines": TEMPLATE_LINES,
                "frames": [[fr.function, fr.file, fr.line, fr.first_line] for fr in profile.frames],
                "stacks": [list(s) for s in profile.stacks],
                "samples_per_stack": samples_per_stack,
                "expected": expected,
                "samples": len(profile),
                "threads": len(profile.threads),
                "rounds": next(counter),
                "threads_started": box.get("started", 0),
                "duration": profile.meta.duration,
                "dropped": profile.meta.dropped,
                "counters": profile.meta.extra["sampler"],
            }, f)


    main()
    '''
)

_NAME = re.compile(r"^[A-Za-z_<][\w<>.]*$")


def _check_stress_frames(out: dict[str, Any]) -> list[str]:
    """Every problem with the frames and stacks the stress child reported (empty: all good)."""
    problems: list[str] = []
    script = out["script"]
    expected = {name: set(names) for name, names in out["expected"].items()}
    frames = out["frames"]
    for function, file, line, first_line in frames:
        where = f"{function!r} in {file!r}:{line}"
        if not isinstance(function, str) or not _NAME.match(function):
            problems.append(f"garbage function name: {where}")
        if function == "<unknown>":
            problems.append(f"unresolved frame: {where}")
        if not isinstance(file, str) or not file or not (file.startswith("<") or Path(file).exists()):
            problems.append(f"garbage file name: {where}")
        if file == script or file.startswith("<stress-"):
            if function not in expected.get(file, set()):
                problems.append(f"{where}: no code object of that name was ever compiled for that file")
        # (A module's RESUME is on line 0 in 3.12+.)
        if file.startswith("<stress-") and not (
            1 <= first_line <= line <= out["template_lines"] or (function == "<module>" and line == 0)
        ):
            problems.append(f"{where}: line outside the function (first line {first_line})")
    # Stack structure: a frame of round N's code is called from run_round, or from round N's own
    # code; its genexpr from its method. A code object freed and its address reused by another
    # round's code, reported under the new name, would break these.
    for stack in out["stacks"]:
        for parent_index, child_index in itertools.pairwise(stack):
            parent, child = frames[parent_index], frames[child_index]
            if not child[1].startswith("<stress-"):
                continue
            if child[0].endswith("<genexpr>"):
                ok = parent[1] == child[1] and child[0] == parent[0] + ".<locals>.<genexpr>"
            else:
                ok = parent[1] == child[1] or (parent[1] == script and parent[0] == "run_round")
            if not ok:
                problems.append(f"impossible call: {parent[0]} ({parent[1]}) -> {child[0]} ({child[1]})")
    return problems


def test_stress_10khz_with_code_objects_created_and_destroyed(tmp_path: Path) -> None:
    out_path = tmp_path / "stress.json"
    result = run_script(STRESS_PROGRAM, tmp_path, args=["10", str(out_path)], timeout=180, name="stress.py")
    assert result.returncode == 0, "the stress child did not exit cleanly: " + describe(result)
    out = json.loads(out_path.read_text())
    counters = out["counters"]
    print(
        f"\nstress: {out['samples']} samples, {out['rounds']} rounds, {out['threads_started']} threads, "
        f"{len(out['frames'])} frames, dropped {out['dropped']}, "
        f"code_objects_rescued {counters['code_objects_rescued']}; counters {counters}"
    )
    assert out["rounds"] > 500 and out["threads_started"] > 20, "the workload barely ran"
    assert out["samples"] > 20000, f"only {out['samples']} samples in 10 s at 10 kHz"
    problems = _check_stress_frames(out)
    assert not problems, f"{len(problems)} bad frames/stacks, first ones:\n" + "\n".join(problems[:20])
    # The exec'd code was actually sampled (otherwise the name checks above prove nothing).
    stress_frames = sum(1 for f in out["frames"] if f[1].startswith("<stress-"))
    assert stress_frames > 100, f"only {stress_frames} frames of exec'd code"


# -- 7. fork ----------------------------------------------------------------------------------------

FORK_PROGRAM = textwrap.dedent(
    """
    import gc, json, os, sys, threading, time
    import aether_native
    from aether_perf.errors import SamplerStateError

    MODE = sys.argv[1]

    def burn(seconds):
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            for _ in range(50):
                pass

    def parent_before(seconds):
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            for _ in range(50):
                pass

    def parent_after(seconds):
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            for _ in range(50):
                pass

    def child_work(seconds):
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            for _ in range(50):
                pass

    def child_churn(rounds):
        # Code objects created and destroyed in a child that inherited the code-death hook.
        for i in range(rounds):
            namespace = {}
            exec(compile(f"def f_{i}(n):\\n    return sum(range(n))\\n", f"<child-{i}>", "exec"), namespace)
            namespace[f"f_{i}"](1000)
            del namespace
        gc.collect()

    def in_child(sampler, write_fd, own_sampler):
        report = {"running_in_child": sampler.running}
        try:
            sampler.stop()
            report["stop"] = "returned"
        except SamplerStateError as exc:
            report["stop"] = "SamplerStateError"
        except BaseException as exc:
            report["stop"] = repr(exc)
        child_work(0.05)
        child_churn(200)
        if own_sampler:
            mine = aether_native.Sampler("1ms", MODE).start()
            c0 = time.thread_time()
            child_work(0.2)
            cpu = time.thread_time() - c0
            profile = mine.stop()
            report["child_samples"] = len(profile)
            report["child_functions"] = sorted({f.function for f in profile.frames})
            report["child_cpu"] = cpu
            report["child_work_weight"] = int(sum(
                w for s, w in zip(profile.stack.tolist(), profile.weight_ns.tolist())
                if profile.stacks[s] and profile.frames[profile.stacks[s][-1]].function == "child_work"
            ))
            report["child_pid_ok"] = profile.meta.extra["pid"] == os.getpid()
        os.write(write_fd, json.dumps(report).encode())
        os.close(write_fd)

    sampler = aether_native.Sampler("1ms", MODE).start()
    c0 = time.thread_time()
    parent_before(0.15)
    before_cpu = time.thread_time() - c0
    children = {}
    after_cpu = 0.0
    for own_sampler, status in ((True, 42), (False, 7)):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                in_child(sampler, w, own_sampler)
            except BaseException:
                import traceback
                traceback.print_exc()
                os._exit(99)
            sys.exit(status)   # a normal exit: atexit handlers and finalization run in the child
        os.close(w)
        c0 = time.thread_time()
        parent_after(0.1)      # the parent keeps working (and being sampled) meanwhile
        after_cpu += time.thread_time() - c0
        with os.fdopen(r, "rb") as f:
            data = f.read()
        _, wait_status = os.waitpid(pid, 0)
        children[status] = {
            "exit": os.waitstatus_to_exitcode(wait_status),
            "report": json.loads(data or b"{}"),
        }
    profile = sampler.stop()

    def leaf_weight(name):
        return int(sum(
            w for s, w in zip(profile.stack.tolist(), profile.weight_ns.tolist())
            if profile.stacks[s] and profile.frames[profile.stacks[s][-1]].function == name
        ))

    print(json.dumps({
        "children": children,
        "parent_functions": sorted({f.function for f in profile.frames}),
        "parent_pid_ok": profile.meta.extra["pid"] == os.getpid(),
        "before_cpu": before_cpu,
        "after_cpu": after_cpu,
        "before_weight": leaf_weight("parent_before"),
        "after_weight": leaf_weight("parent_after"),
        "dropped": profile.meta.dropped,
        "samples": len(profile),
    }))
    """
)


@pytest.mark.parametrize("mode", ["cpu", "wall"])
def test_fork_under_sampling(tmp_path: Path, mode: str) -> None:
    result = run_script(FORK_PROGRAM, tmp_path, args=[mode], timeout=60)
    assert result.returncode == 0, describe(result)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    # Child 1: cannot stop the parent's sampler, runs Python, samples itself, exits 42.
    first = out["children"]["42"]
    assert first["exit"] == 42, describe(result)
    report = first["report"]
    assert report["running_in_child"] is False
    assert report["stop"] == "SamplerStateError"
    assert report["child_samples"] > 0 and report["child_pid_ok"]
    assert "child_work" in report["child_functions"]
    assert not {"parent_before", "parent_after"} & set(report["child_functions"]), (
        "the child's profile holds records of the parent's session"
    )
    if mode == "cpu":
        assert report["child_work_weight"] == pytest.approx(report["child_cpu"] * 1e9, rel=0.15)
    # Child 2: never samples, churns code objects, exits 7.
    second = out["children"]["7"]
    assert second["exit"] == 7, describe(result)
    assert second["report"]["stop"] == "SamplerStateError"
    # The parent's profile is intact: both phases, nothing of the children's.
    assert out["parent_pid_ok"]
    assert {"parent_before", "parent_after"} <= set(out["parent_functions"])
    assert not {"child_work", "child_churn", "in_child"} & set(out["parent_functions"])
    assert out["dropped"] == 0
    if mode == "cpu":
        assert out["before_weight"] == pytest.approx(out["before_cpu"] * 1e9, rel=0.15)
        assert out["after_weight"] == pytest.approx(out["after_cpu"] * 1e9, rel=0.15)
    else:
        assert out["before_weight"] >= 0.9 * out["before_cpu"] * 1e9
        assert out["after_weight"] >= 0.9 * out["after_cpu"] * 1e9
    assert "Fatal Python error" not in result.stderr, result.stderr


# -- 8. EINTR: blocking calls behave the same with and without the sampler ----------------------------

BLOCKING_PROGRAM = textwrap.dedent(
    """
    import json, os, select, socket, subprocess, sys, threading, time

    MODE = sys.argv[1]
    if MODE != "none":
        import aether_native
        sampler = aether_native.Sampler("1ms", MODE).start()

    results, timings = {}, {}

    def timed(name, fn):
        t0 = time.monotonic()
        results[name] = fn()
        timings[name] = time.monotonic() - t0

    def sleeps():
        for _ in range(10):
            time.sleep(0.02)
        return "slept"

    def pipe_reads():
        r, w = os.pipe()
        def feeder():
            for i in range(5):
                time.sleep(0.03)
                os.write(w, f"chunk{i};".encode())
            os.close(w)
        t = threading.Thread(target=feeder)
        t.start()
        data = b""
        while True:
            chunk = os.read(r, 100)
            if not chunk:
                break
            data += chunk
        t.join()
        os.close(r)
        return data.decode()

    def file_read_until_eof():
        r, w = os.pipe()
        def feeder():
            for i in range(3):
                time.sleep(0.03)
                os.write(w, b"x" * 1000)
            os.close(w)
        t = threading.Thread(target=feeder)
        t.start()
        with os.fdopen(r, "rb") as f:
            data = f.read()
        t.join()
        return len(data)

    def socket_timeout():
        a, b = socket.socketpair()
        a.settimeout(0.15)
        try:
            a.recv(10)
            return "no timeout"
        except socket.timeout:
            return "timeout"
        finally:
            a.close()
            b.close()

    def socket_delayed_data():
        a, b = socket.socketpair()
        a.settimeout(2.0)
        def sender():
            time.sleep(0.08)
            b.sendall(b"hello")
        t = threading.Thread(target=sender)
        t.start()
        try:
            return a.recv(10).decode()
        finally:
            t.join()
            a.close()
            b.close()

    def select_timeout():
        r, w = os.pipe()
        try:
            return [len(x) for x in select.select([r], [], [], 0.1)]
        finally:
            os.close(r)
            os.close(w)

    def poll_timeout():
        r, w = os.pipe()
        p = select.poll()
        p.register(r, select.POLLIN)
        try:
            return p.poll(100)
        finally:
            os.close(r)
            os.close(w)

    def select_ready_later():
        r, w = os.pipe()
        threading.Timer(0.05, lambda: os.write(w, b"!")).start()
        try:
            ready = select.select([r], [], [], 2.0)[0]
            return [len(ready), os.read(r, 1).decode()]
        finally:
            os.close(r)
            os.close(w)

    def lock_timeout():
        lock = threading.Lock()
        lock.acquire()
        return lock.acquire(timeout=0.1)

    def event_timeout():
        return threading.Event().wait(0.1)

    def run_child():
        code = "import sys, time; time.sleep(0.1); print('child ok'); sys.exit(3)"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        return [done.returncode, done.stdout, done.stderr]

    def sleep_in_thread():
        box = {}
        def sleeper():
            t0 = time.monotonic()
            time.sleep(0.1)
            box["slept"] = time.monotonic() - t0 >= 0.1
        t = threading.Thread(target=sleeper)
        t.start()
        t.join()
        return box["slept"]

    timed("sleep", sleeps)
    timed("pipe_reads", pipe_reads)
    timed("file_read_until_eof", file_read_until_eof)
    timed("socket_timeout", socket_timeout)
    timed("socket_delayed_data", socket_delayed_data)
    timed("select_timeout", select_timeout)
    timed("poll_timeout", poll_timeout)
    timed("select_ready_later", select_ready_later)
    timed("lock_timeout", lock_timeout)
    timed("event_timeout", event_timeout)
    timed("run_child", run_child)
    timed("sleep_in_thread", sleep_in_thread)

    info = {"results": results, "timings": timings}
    if MODE != "none":
        profile = sampler.stop()
        info["samples"] = len(profile)
        info["counters"] = profile.meta.extra["sampler"]
    print(json.dumps(info))
    sys.exit(5)
    """
)

#: The least time each blocking step takes (what the program asks for).
BLOCKING_MINIMUM = {
    "sleep": 0.2,
    "pipe_reads": 0.15,
    "file_read_until_eof": 0.09,
    "socket_timeout": 0.15,
    "socket_delayed_data": 0.08,
    "select_timeout": 0.1,
    "poll_timeout": 0.1,
    "select_ready_later": 0.05,
    "lock_timeout": 0.1,
    "event_timeout": 0.1,
    "run_child": 0.1,
    "sleep_in_thread": 0.1,
}


def test_blocking_calls_behave_the_same_with_and_without_sampler(tmp_path: Path) -> None:
    """Sleeps, pipe reads, socket timeouts, select/poll, lock/event timeouts and a subprocess give
    the same results and exit status without the sampler and under it (cpu and wall at 1 kHz, so
    blocked threads are interrupted by the sampling signal), and take as long as they should:
    never less than asked (an interrupted call must resume, not return early), and not grossly
    more (the margin allows for a loaded 2-CPU machine and, for run_child, interpreter start-up)."""
    runs = {}
    for mode in ("none", "cpu", "wall"):
        result = run_script(BLOCKING_PROGRAM, tmp_path, args=[mode], timeout=60, name="blocking.py")
        assert result.returncode == 5, f"{mode}: " + describe(result)
        runs[mode] = json.loads(result.stdout.strip().splitlines()[-1])
        assert result.stderr == "", f"{mode}: {result.stderr}"
    baseline = runs["none"]["results"]
    assert baseline["sleep"] == "slept"
    assert baseline["pipe_reads"] == "chunk0;chunk1;chunk2;chunk3;chunk4;"
    assert baseline["socket_timeout"] == "timeout"
    assert baseline["run_child"] == [3, "child ok\n", ""]
    for mode in ("cpu", "wall"):
        assert runs[mode]["results"] == baseline, mode
        # The threads were signalled while blocked: about once per blocking call in cpu mode
        # (a thread that ran since the last tick), and all along in wall mode.
        assert runs[mode]["counters"]["signals_sent"] >= 20, runs[mode]["counters"]
    assert runs["wall"]["samples"] > 500, runs["wall"]["counters"]
    problems = []
    for mode, run in runs.items():
        for name, minimum in BLOCKING_MINIMUM.items():
            took = run["timings"][name]
            slack = 0.6 if name == "run_child" else 0.25
            if not minimum - 0.002 <= took <= minimum + slack:
                problems.append(f"{mode}: {name} took {took * 1e3:.1f} ms, expected {minimum * 1e3:.0f} ms")
    assert not problems, "\n".join(problems)


# -- 8b. other users of signals ---------------------------------------------------------------------

SIGNALS_PROGRAM = textwrap.dedent(
    """
    import json, os, signal, sys, threading, time

    MODE = sys.argv[1]
    counts = {"prof": 0, "alrm": 0, "usr1": 0}

    def on_prof(signum, frame):
        counts["prof"] += 1

    def on_alrm(signum, frame):
        counts["alrm"] += 1

    def on_usr1(signum, frame):
        counts["usr1"] += 1

    signal.signal(signal.SIGPROF, on_prof)
    signal.signal(signal.SIGALRM, on_alrm)
    signal.signal(signal.SIGUSR1, on_usr1)
    if MODE != "none":
        import aether_native
        sampler = aether_native.Sampler("1ms", MODE).start()

    def sender():
        # One at a time: the next only once the handler ran for the previous one (two pending
        # SIGUSR1 would merge into one, sampler or not).
        for i in range(20):
            time.sleep(0.02)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
            deadline = time.monotonic() + 2
            while counts["usr1"] <= i and time.monotonic() < deadline:
                time.sleep(0.001)

    def busy(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(50):
                pass

    t = threading.Thread(target=sender)
    p0, t0, m0 = time.process_time(), time.monotonic(), time.thread_time()
    signal.setitimer(signal.ITIMER_PROF, 0.01, 0.01)
    signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
    t.start()
    busy(1.0)
    signal.setitimer(signal.ITIMER_PROF, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)
    cpu, wall, main_cpu = time.process_time() - p0, time.monotonic() - t0, time.thread_time() - m0
    t.join()
    time.sleep(0.05)
    info = {"counts": dict(counts), "cpu": cpu, "wall": wall, "main_cpu": main_cpu}
    if MODE != "none":
        profile = sampler.stop()
        info["busy_samples"] = sum(
            1 for s in profile.stack.tolist() if profile.stacks[s]
            and profile.frames[profile.stacks[s][-1]].function == "busy"
        )
        info["counters"] = profile.meta.extra["sampler"]
    print(json.dumps(info))
    """
)


def test_itimer_sigalrm_and_sigusr1_users_keep_their_signals(tmp_path: Path) -> None:
    """A program with its own setitimer(ITIMER_PROF) + SIGPROF handler, ITIMER_REAL + SIGALRM and
    a SIGUSR1 handler keeps getting its signals under the sampler, and the sampler still samples.

    The rates are checked loosely: ITIMER_PROF is charged by the kernel's tick-based accounting
    and, like ITIMER_REAL, its signals coalesce while the process waits for a CPU, so on a loaded
    machine even the run without the sampler misses some. A sampler that took SIGPROF/SIGALRM over,
    blocked them or swallowed them would get far fewer (or none)."""
    runs = {}
    for mode in ("none", "cpu", "wall"):
        result = run_script(SIGNALS_PROGRAM, tmp_path, args=[mode], timeout=60, name="signals.py")
        assert result.returncode == 0, f"{mode}: " + describe(result)
        runs[mode] = json.loads(result.stdout.strip().splitlines()[-1])
    for mode, run in runs.items():
        counts = run["counts"]
        assert counts["usr1"] == 20, (mode, run)
        # SIGALRM every 20 ms of wall time.
        assert 0.7 * run["wall"] / 0.02 <= counts["alrm"] <= 1.1 * run["wall"] / 0.02 + 1, (mode, run)
        # SIGPROF every 10 ms of process CPU time.
        assert 0.5 * run["cpu"] / 0.01 <= counts["prof"] <= 1.5 * run["cpu"] / 0.01 + 1, (mode, run)
        if mode != "none":
            assert run["busy_samples"] >= 0.5 * run["main_cpu"] / 1e-3, (mode, run)


CHAIN_PROGRAM = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import aether_native

    signo = int(sys.argv[1])
    calls = []
    signal.signal(signo, lambda s, f: calls.append(s))

    def busy(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(50):
                pass

    sampler = aether_native.Sampler("1ms").start()
    for _ in range(10):
        os.kill(os.getpid(), signo)
        busy(0.02)
    profile = sampler.stop()
    during = len(calls)
    for _ in range(5):
        os.kill(os.getpid(), signo)
        time.sleep(0.01)
    print(json.dumps({
        "during": during,
        "total": len(calls),
        "samples": len(profile),
        "foreign": profile.meta.extra["sampler"]["foreign_signals"],
    }))
    """
)


@pytest.mark.parametrize("which", ["default", "SIGUSR2"])
def test_handler_on_the_sampling_signal_is_chained(tmp_path: Path, which: str) -> None:
    """A program that handles the very signal the sampler uses (the default SIGRTMIN+3, or SIGUSR2
    chosen with AETHER_SIGNAL) still gets every signal sent to it, during and after sampling."""
    if which == "default":
        signo = int(signal.SIGRTMIN) + 3
        env = None
    else:
        signo = int(signal.SIGUSR2)
        env = {"AETHER_SIGNAL": "SIGUSR2"}
    result = run_script(CHAIN_PROGRAM, tmp_path, args=[str(signo)], timeout=60, env=env, name="chain.py")
    assert result.returncode == 0, describe(result)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["during"] == 10, out
    assert out["total"] == 15, out
    assert out["samples"] > 10, out
    assert out["foreign"] >= 10, out


FAULTHANDLER_PROGRAM = textwrap.dedent(
    """
    import faulthandler, json, sys, tempfile, time
    import aether_native

    MODE = sys.argv[1]

    def waiting_for_dump(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(50):
                pass

    def crash_here():
        faulthandler._sigsegv()

    faulthandler.enable()
    sampler = aether_native.Sampler("1ms", "cpu").start() if MODE != "none" else None
    with tempfile.TemporaryFile("w+") as later, tempfile.TemporaryFile("w+") as now:
        faulthandler.dump_traceback_later(0.2, file=later)
        waiting_for_dump(0.4)
        faulthandler.cancel_dump_traceback_later()
        faulthandler.dump_traceback(file=now, all_threads=True)
        later.seek(0)
        now.seek(0)
        dumps = {"later": later.read(), "now": now.read()}
    print(json.dumps({
        "later_ok": "waiting_for_dump" in dumps["later"],
        "now_ok": "<module>" in dumps["now"],
        "dumps": dumps,
    }), flush=True)
    crash_here()
    """
)


@pytest.mark.parametrize("mode", ["none", "cpu"])
def test_faulthandler_works_under_sampling(tmp_path: Path, mode: str) -> None:
    """faulthandler.enable(), dump_traceback_later() and dump_traceback() work while sampled, and a
    real crash (SIGSEGV) is still reported by faulthandler with the crashing function."""
    result = run_script(FAULTHANDLER_PROGRAM, tmp_path, args=[mode], timeout=60, name="fh.py")
    assert result.returncode == -signal.SIGSEGV, describe(result)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["later_ok"], out["dumps"]
    assert out["now_ok"], out["dumps"]
    assert "Fatal Python error: Segmentation fault" in result.stderr, result.stderr
    assert "crash_here" in result.stderr, result.stderr


def test_child_env_makes_the_package_importable(tmp_path: Path) -> None:
    """The helper every subprocess test relies on: a child finds aether_native and aether_perf."""
    result = run_script(
        "import aether_native, aether_perf, sys; print(aether_native.__file__, aether_perf.__file__)",
        tmp_path,
        timeout=60,
        name="where.py",
    )
    assert result.returncode == 0, describe(result)
    assert sys.executable  # the child ran with this interpreter
    assert workloads.ROOT.is_dir()
