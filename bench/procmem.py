"""Peak memory of a process and all its descendants (the batch's worker processes included), sampled from
/proc. Shared by the benchmark and the tests that bound a run's memory; Linux only."""

from __future__ import annotations

import os
import sys

SAMPLE_INTERVAL = 0.02
MB = 1024 * 1024
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _children_map() -> dict[int, list[int]]:
    """ppid -> pids, from /proc/*/stat (this kernel may lack /proc/<pid>/task/<tid>/children)."""
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # Field 2 (comm) is in parentheses and may hold spaces: split after the last ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        kids.setdefault(int(fields[1]), []).append(int(entry.name))
    return kids


def has_children_files() -> bool:
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _descendants(root: int, use_children_files: bool) -> list[int]:
    pids, todo = [], [root]
    kids = None if use_children_files else _children_map()
    while todo:
        pid = todo.pop()
        pids.append(pid)
        if kids is not None:
            todo.extend(kids.get(pid, ()))
            continue
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo.extend(int(x) for x in fh.read().split())
        except OSError:
            pass
    return pids


def _rss_bytes(pid: int, page: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * page
    except (OSError, IndexError, ValueError):
        return 0


class TreeSampler:
    """A thread that sums the RSS of a process and all its descendants every ~20 ms and keeps the peak."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL) -> None:
        import threading

        self.pid, self.interval = pid, interval
        self.peak = 0
        self.peak_procs = 0
        self.max_procs = 0
        self.samples = 0
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._children_files = has_children_files()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            pids = _descendants(self.pid, self._children_files)
            total = sum(_rss_bytes(p, self._page) for p in pids)
            self.samples += 1
            self.max_procs = max(self.max_procs, len(pids))
            if total > self.peak:
                self.peak, self.peak_procs = total, len(pids)
            if self._stop.wait(self.interval):
                return

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def measure(cmd: list[str], log_path: str | None = None, sample_memory: bool = True,
            env: dict[str, str] | None = None) -> dict:
    """Run cmd from the repository root (in `env`, else this environment); wall time, exit code, peak tree
    RSS, maxrss (wait4 and RUSAGE_CHILDREN)."""
    import resource
    import subprocess
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # closed in the finally below
    try:
        t0 = time.perf_counter()
        # Linux keeps a process's maxrss across execve, and a child forked from a big parent (a test run)
        # starts with the parent's pages: so cmd is forked from a small launcher, which reports its wait4.
        read_fd, write_fd = os.pipe()
        launcher = [sys.executable, "-S", os.path.abspath(__file__), "_spawn", str(write_fd), *cmd]
        proc = subprocess.Popen(launcher, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                pass_fds=(write_fd,), env=env)
        os.close(write_fd)
        sampler = TreeSampler(proc.pid).start() if sample_memory else None
        with os.fdopen(read_fd, "rb") as fh:
            report = fh.read()
        proc.wait()
        elapsed = time.perf_counter() - t0
        if sampler:
            sampler.stop()
    finally:
        if log_path:
            out.close()
    code, maxrss_kib = (int(x) for x in report.split()) if report else (proc.returncode, 0)
    proc.returncode = code
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seconds": elapsed,
        "exit": proc.returncode,
        "tree_peak_mb": sampler.peak / MB if sampler else None,
        "tree_peak_procs": sampler.peak_procs if sampler else None,
        "max_procs": sampler.max_procs if sampler else None,
        "rss_samples": sampler.samples if sampler else None,
        "wait4_maxrss_mb": maxrss_kib / 1024,  # Linux: KiB
        # RUSAGE_CHILDREN's maxrss is the largest single child ever reaped: it only moves when this child
        # beats every earlier one, so the delta is 0 when it did not, and `after` is then an upper bound.
        "rusage_children_maxrss_mb_before": before / 1024,
        "rusage_children_maxrss_mb_after": after / 1024,
        "rusage_children_delta_mb": (after - before) / 1024,
    }


def _spawn(report_fd: int, cmd: list[str]) -> int:
    """The launcher: fork cmd from this small process, wait for it, write 'exit maxrss_kib' to report_fd."""
    pid = os.fork()
    if pid == 0:
        os.close(report_fd)
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os.write(report_fd, f"{code} {usage.ru_maxrss}".encode())
    return code


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "_spawn":
    sys.exit(_spawn(int(sys.argv[2]), sys.argv[3:]) & 0xFF)
