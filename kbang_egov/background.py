"""One function run in a forked process beside the caller, its value or exception handed back."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
from collections.abc import Callable
from typing import Any


class Background:
    """func() run in a forked process alongside the caller: the run's two cores write the workbook and the
    CSVs at once. result() waits and returns func's value or raises its exception. Where fork is not
    available func runs in result(), in this process."""

    def __init__(self, func: Callable[[], Any]) -> None:
        self._func = func
        self._proc: Any = None
        if "fork" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("fork")
            self._conn, child = ctx.Pipe(duplex=False)
            self._proc = ctx.Process(target=_background, args=(child, func), daemon=True)
            self._proc.start()
            child.close()

    def result(self) -> Any:
        if self._proc is None:
            return self._func()
        try:
            ok, value = self._conn.recv()
        except EOFError:  # died without a word: killed, or out of memory
            self._proc.join()
            raise RuntimeError(f"the background process ended with exit code {self._proc.exitcode}") from None
        finally:
            self._conn.close()
        self._proc.join()
        if not ok:
            raise value
        return value


def _background(conn: multiprocessing.connection.Connection, func: Callable[[], Any]) -> None:
    try:
        reply: tuple[bool, Any] = (True, func())
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller, as it is
        reply = (False, exc)
    try:
        conn.send(reply)
    except Exception as exc:  # noqa: BLE001 - an exception that cannot be pickled: send its text
        conn.send((False, RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}; {exc}")))
    conn.close()
