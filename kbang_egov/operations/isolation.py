"""Running a task per item in worker processes, so that nothing one item does can take the run down.

python-calamine is native code: a hostile workbook can make it abort the process (a Rust allocation of
hundreds of gigabytes), raise pyo3's PanicException, loop, or eat memory. Each item runs in a worker; a
worker that dies, overruns the time limit or its memory limit is killed and replaced, and its item comes
back as a Failure. The other items go on. Workers also read in parallel, which is where a run's time goes.
"""

from __future__ import annotations

import contextlib
import faulthandler
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CRASHED, TIMEOUT, ERROR = "crashed", "timeout", "error"
DEFAULT_TIMEOUT = 60.0  # seconds per item
DEFAULT_MEMORY_LIMIT = 2 * 2**30  # bytes of address space per worker (POSIX); 0 for none
QUEUE_DEPTH = 2  # items in a worker's pipe at once: the one it works on and the next
_PR_SET_PDEATHSIG = 1  # Linux's <sys/prctl.h>


@dataclass(frozen=True)
class Failure:
    """An item whose worker did not return a result."""

    kind: str  # CRASHED (the worker died), TIMEOUT (killed after the limit) or ERROR (a Python exception)
    detail: str  # the signal or exit code and the worker's last words on stderr, or the exception
    ended: bool = False  # the worker stopped after answering (a MemoryError leaves its heap in doubt)


def default_workers() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_isolated(func: Callable[[Any], Any], items: Sequence[Any], *, workers: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT, memory_limit: int = DEFAULT_MEMORY_LIMIT,
                 ) -> Iterator[tuple[int, Any]]:
    """Yield (index, func(item)) or (index, Failure) for every item, in completion order, from a pool of its
    own (IsolatedPool, which says how items are shared out and what a failure is)."""
    if not items:
        return
    n = max(1, min(workers or default_workers(), len(items)))
    with IsolatedPool({"run": func}, n, memory_limit=memory_limit) as pool:
        yield from pool.map("run", items, timeout)


class IsolatedPool:
    """Worker processes that run named tasks on items, one item at a time each, for several passes of a run
    (`with IsolatedPool({"read": f, "write": g}, 2) as pool: pool.map("read", items)`).

    The tasks are given when the workers start: forked workers inherit them (a partial holding the rulebook
    costs nothing per item); where fork is missing, spawned ones receive them once. Workers forked early,
    before the run holds its results, stay small for the later passes."""

    def __init__(self, tasks: Mapping[str, Callable[[Any], Any]], workers: int | None = None, *,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self.ctx = multiprocessing.get_context(method)
        self.tasks, self.memory_limit = dict(tasks), memory_limit
        self.workers: list[_Worker] = []
        try:
            for _ in range(max(1, workers or default_workers())):
                self.workers.append(_Worker(self.ctx, self.tasks, memory_limit, self.workers))
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise

    def __enter__(self) -> IsolatedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)

    def close(self, kill: bool = False) -> None:
        """Stop the workers (kill: at once, else once they are idle); closing again does nothing. A worker
        leaves the pool once it is stopped, so a close cut short (SIGTERM) is finished by the next one."""
        while self.workers:
            self.workers[-1].stop(kill=kill)
            self.workers.pop()

    def map(self, task: str, items: Sequence[Any], timeout: float = DEFAULT_TIMEOUT) -> Iterator[tuple[int, Any]]:
        """Yield (index, result) or (index, Failure) for every item, in completion order.

        A worker handles items one at a time, in the order they were sent (it holds the next one in its
        pipe), so a failure is pinned to the item that caused it: a worker that dies, overruns `timeout` or
        its memory limit is killed and replaced, and the items queued behind it go to its replacement."""
        if task not in self.tasks:
            raise KeyError(f"no task {task!r} in this pool")
        if not self.workers:
            raise RuntimeError("the pool is closed")
        for w in list(self.workers):
            if w.queue or not w.proc.is_alive():  # a map left half-way, or a worker that died while idle
                w.queue.clear()
                self._replace(w, task, items)
        todo = iter(range(len(items)))
        for depth in (1, QUEUE_DEPTH):  # one item each first, so that a short list is shared out evenly
            for w in self.workers:
                self._assign(w, todo, task, items, depth)
        while any(w.queue for w in self.workers):
            for w, outcome in self._wait(timeout, task, items):
                yield outcome
                self._assign(w, todo, task, items)

    def _assign(self, w: _Worker, todo: Iterator[int], task: str, items: Sequence[Any],
                depth: int = QUEUE_DEPTH) -> None:
        """Top the worker's queue up to `depth` items: the next item is already in its pipe when it answers
        one, so it never waits for this process to read the answer."""
        while len(w.queue) < depth:
            i = next(todo, None)
            if i is None:
                return
            self._send(w, i, task, items)

    def _send(self, w: _Worker, i: int, task: str, items: Sequence[Any]) -> None:
        w.queue.append(i)
        if len(w.queue) == 1:
            _begin(w)
        try:
            w.conn.send((i, task, items[i]))
        except OSError:
            pass  # the worker is dead: _wait() sees its sentinel and reports the item

    def _replace(self, w: _Worker, task: str, items: Sequence[Any]) -> _Worker:
        """A fresh worker in w's place, given the items w had queued behind the one that failed."""
        w.stop(kill=True)
        fresh = _Worker(self.ctx, self.tasks, self.memory_limit, [o for o in self.workers if o is not w])
        self.workers[self.workers.index(w)] = fresh
        for i in w.queue:
            self._send(fresh, i, task, items)
        return fresh

    def _wait(self, timeout: float, task: str, items: Sequence[Any]) -> list[tuple[_Worker, tuple[int, Any]]]:
        """Block until some worker answers, dies or overruns; return (worker to reuse, (index, outcome))."""
        active = [w for w in self.workers if w.queue]
        now = time.monotonic()
        deadline = min(w.started + timeout for w in active)
        waitables: list[Any] = [w.conn for w in active] + [w.proc.sentinel for w in active]
        ready = multiprocessing.connection.wait(waitables, timeout=max(0.0, deadline - now))
        done: list[tuple[_Worker, tuple[int, Any]]] = []
        for w in active:
            if w.conn in ready:
                try:
                    got_i, outcome = w.conn.recv()
                except (EOFError, OSError):
                    pass  # died while answering: reported as a crash below
                else:
                    w.queue.popleft()  # answers come in the order the items were sent
                    if isinstance(outcome, Failure) and outcome.ended:
                        w = self._replace(w, task, items)  # the items queued behind go to a fresh worker
                    elif w.queue:
                        _begin(w)
                    done.append((w, (got_i, outcome)))
                    continue
            if w.conn in ready or w.proc.sentinel in ready:
                w.proc.join(5)
                detail = _exit_detail(w.proc.exitcode, w.last_words())
                i = w.queue.popleft()  # the item it was working on; the ones behind it go to the new worker
                done.append((self._replace(w, task, items), (i, Failure(CRASHED, detail))))
            elif time.monotonic() - w.started >= timeout:
                i = w.queue.popleft()
                done.append((self._replace(w, task, items), (i, Failure(TIMEOUT, f"{timeout:g} s"))))
        return done


class InlinePool:
    """IsolatedPool's interface in this process, without its protection (workers=0: for profiling)."""

    def __init__(self, tasks: Mapping[str, Callable[[Any], Any]]) -> None:
        self.tasks = dict(tasks)

    def __enter__(self) -> InlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass

    def map(self, task: str, items: Sequence[Any], timeout: float = DEFAULT_TIMEOUT) -> Iterator[tuple[int, Any]]:
        return enumerate(map(self.tasks[task], items))


def open_pool(tasks: Mapping[str, Callable[[Any], Any]], workers: int | None, jobs: int) -> IsolatedPool | InlinePool:
    """The pool for a run of `jobs` items: an IsolatedPool of `workers` processes (default one per CPU, never
    more than jobs), or an InlinePool when workers is 0."""
    if workers == 0:
        return InlinePool(tasks)
    return IsolatedPool(tasks, max(1, min(workers or default_workers(), jobs)))


_TERMINATION = (signal.SIGTERM,)


@contextlib.contextmanager
def termination_deferred() -> Iterator[None]:
    """SIGTERM held back for a few lines that must not be cut in the middle: forking a worker (the CLI's
    handler, which raises SystemExit, would otherwise run inside the fork's hooks or a finalizer, where the
    exception is printed and swallowed), taking and releasing the run's lock. The signal is delivered as
    soon as the block is done, in this frame."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _TERMINATION)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _unblock_termination() -> None:
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _TERMINATION)


class _Worker:
    def __init__(self, ctx: Any, tasks: dict[str, Callable[[Any], Any]], memory_limit: int,
                 others: Sequence[_Worker] = ()) -> None:
        fd, self.stderr_path = tempfile.mkstemp(prefix="kbang-egov-worker-", suffix=".log")
        os.close(fd)
        self.conn, child = ctx.Pipe()
        # A forked worker inherits this process's end of its own pipe and of the other workers' pipes: it
        # closes them, so that the pipes close (EOF) when this process dies. A spawned one inherits nothing.
        inherited = [self.conn, *(w.conn for w in others)] if ctx.get_start_method() == "fork" else []
        self.proc = ctx.Process(target=_serve, daemon=True,
                                args=(child, tasks, memory_limit, self.stderr_path, os.getpid(), inherited))
        with termination_deferred():
            self.proc.start()
        child.close()
        self.queue: deque[int] = deque()  # items sent and not yet answered, the one being worked on first
        self.started = 0.0  # when the worker began the first item of the queue
        self.mark = 0  # size of the stderr file when it began that item: its words start there

    def stop(self, kill: bool = False) -> None:
        if kill and self.proc.is_alive():
            self.proc.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()
        try:
            os.unlink(self.stderr_path)
        except OSError:
            pass

    def last_words(self) -> str:
        """The first line the worker wrote to stderr for its current item (Rust's 'memory allocation of ...
        bytes failed', Python's 'Fatal Python error: ...'), without backtraces."""
        try:
            with open(self.stderr_path, "rb") as fh:
                fh.seek(self.mark)
                text = fh.read(8192).decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln[:1].isspace()]
        useful = [ln for ln in lines if "backtrace" not in ln.lower() and not ln[:1].isdigit()]
        return useful[0][:200] if useful else ""


def _begin(w: _Worker) -> None:
    """Note that w begins the first item of its queue: the time limit and its stderr words start now."""
    w.started = time.monotonic()
    try:
        w.mark = os.path.getsize(w.stderr_path)
    except OSError:
        w.mark = 0


def _exit_detail(code: int | None, words: str) -> str:
    if code is not None and code < 0:
        try:
            what = signal.Signals(-code).name
        except ValueError:
            what = f"signal {-code}"
    else:
        what = f"exit code {code}"
    return f"{what}: {words}" if words else what


def _die_with_parent(parent_pid: int) -> bool:
    """Make sure this worker does not outlive the process that started it; False if that one is already gone.

    On Linux the kernel sends the worker SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG, through
    ctypes: Python has no binding for it). That works while the worker is deep in one file, holding the GIL
    (a regular expression backtracking, native code looping), when no watchdog thread in the worker could
    run, and before the parent's own time limit, which died with it, would have stopped it. Elsewhere an
    idle worker ends when its pipe closes (see _serve), a busy one after its current file."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl in this C library: the pipe still closes
    return os.getppid() == parent_pid  # the parent died before the call: no signal will come


def _serve(conn: Any, tasks: dict[str, Callable[[Any], Any]], memory_limit: int, stderr_path: str, parent_pid: int,
           inherited: Sequence[Any] = ()) -> None:
    """A worker's loop: take (index, task, item), answer (index, result or Failure), until told to stop or
    the parent is gone (its end of the pipe closes: recv() raises EOFError)."""
    if not _die_with_parent(parent_pid):
        return
    for c in inherited:
        c.close()
    try:  # the caller's standard output (`batch.py run | mail`) is never held open by a worker
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass
    _unblock_termination()  # blocked while the parent forked this worker (termination_deferred)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ["RUST_BACKTRACE"] = "0"  # a native abort's one-line reason, not pages of frames
    try:
        fd = os.open(stderr_path, os.O_WRONLY | os.O_APPEND)
        os.dup2(fd, 2)  # native code writes its last words to fd 2: keep them for the finding, not the mail
        os.close(fd)
        faulthandler.enable(file=sys.stderr)  # on a fatal signal, Python's traceback goes there too
    except OSError:
        pass
    if memory_limit and sys.platform != "win32":
        import resource

        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ValueError, OSError):
            pass  # a lower hard limit is already set: keep it
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        i, name, item = task
        try:
            result: Any = tasks[name](item)
        except MemoryError:
            # Whatever was half-built when the allocation failed may still hold memory or a lock: this worker
            # answers and stops, and the pool gives the items queued behind to a fresh one.
            result = Failure(ERROR, "MemoryError: vượt giới hạn bộ nhớ của tiến trình đọc", ended=True)
        except BaseException as exc:  # noqa: BLE001 - whatever one item raises is that item's failure
            result = Failure(ERROR, "".join(traceback.format_exception_only(type(exc), exc)).strip()[:500])
        try:
            conn.send((i, result))
        except (OSError, ValueError):
            return
        if isinstance(result, Failure) and result.ended:
            return

