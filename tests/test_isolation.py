"""Worker isolation: whatever one item does to its worker, the other items come back."""

from __future__ import annotations

import os
import signal
import time

import pytest

from kbang_egov.operations.isolation import CRASHED, ERROR, TIMEOUT, Failure, IsolatedPool, run_isolated

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and address-space limits are POSIX")


def _square_or_misbehave(x: int) -> int:
    if x == 3:
        os.abort()  # what a Rust allocation failure does to the process
    if x == 5:
        time.sleep(60)
    if x == 7:
        raise ValueError("bad item")
    if x == 8:
        bytearray(3 * 2**30)  # over the worker's address-space limit
    if x == 9:
        raise KeyboardInterrupt  # a BaseException from inside native code must not stop the pool
    return x * x


def test_failures_are_pinned_to_their_item_and_the_rest_complete():
    got = dict(run_isolated(_square_or_misbehave, list(range(12)), workers=2, timeout=1.5,
                            memory_limit=2 * 2**30))
    assert sorted(got) == list(range(12))
    assert {i: v for i, v in got.items() if not isinstance(v, Failure)} == \
        {i: i * i for i in (0, 1, 2, 4, 6, 10, 11)}
    assert got[3].kind == CRASHED and got[3].detail.startswith("SIGABRT")
    assert got[5] == Failure(TIMEOUT, "1.5 s")
    assert got[7].kind == ERROR and got[7].detail == "ValueError: bad item"
    assert got[8].kind == ERROR and got[8].detail.startswith("MemoryError")
    assert got[9].kind == ERROR and got[9].detail.startswith("KeyboardInterrupt")


def _pid_or_out_of_memory(x: int) -> int:
    if x == 1:
        bytearray(3 * 2**30)  # over the worker's address-space limit
    return os.getpid()


def test_a_worker_that_ran_out_of_memory_is_replaced_and_the_items_behind_it_complete():
    answers = list(run_isolated(_pid_or_out_of_memory, [0, 1, 2, 3], workers=1, memory_limit=2 * 2**30))
    assert [i for i, _ in answers] == [0, 1, 2, 3]  # each item answered once, in order
    got = dict(answers)
    assert got[1].kind == ERROR and got[1].detail.startswith("MemoryError") and got[1].ended
    assert got[0] != got[2] == got[3]  # item 2, queued behind the failure, went to the new worker
    assert all(isinstance(got[i], int) for i in (0, 2, 3))


def _write_then_die(x: int) -> int:
    os.write(2, b"memory allocation of 549755813888 bytes failed\n")
    os._exit(134)


def test_a_crash_reports_the_workers_last_words():
    [(i, failure)] = list(run_isolated(_write_then_die, [1], workers=1, timeout=10))
    assert (i, failure.kind) == (0, CRASHED)
    assert failure.detail == "exit code 134: memory allocation of 549755813888 bytes failed"


def test_no_items_no_workers():
    assert list(run_isolated(_square_or_misbehave, [], workers=2)) == []


def test_one_worker_handles_items_in_order():
    got = [i for i, _ in run_isolated(_square_or_misbehave, [0, 1, 2], workers=1)]
    assert got == [0, 1, 2]



def test_items_queued_behind_a_failure_go_to_the_new_worker():
    """One worker holds the next item in its pipe while it works: when it crashes or hangs, the item it was
    working on fails and the ones queued behind it are done by its replacement, once each."""
    got = list(run_isolated(_square_or_misbehave, [2, 3, 4, 5, 6], workers=1, timeout=1.0))
    assert [i for i, _ in got] == [0, 1, 2, 3, 4]
    values = [v for _, v in got]
    assert values[0] == 4 and values[2] == 16 and values[4] == 36
    assert values[1].kind == CRASHED and values[3] == Failure(TIMEOUT, "1 s")


def _negate(x: int) -> int:
    return -x


def test_one_pool_runs_its_tasks_pass_after_pass_and_refuses_once_closed():
    with IsolatedPool({"square": _square_or_misbehave, "negate": _negate}, 2) as pool:
        assert sorted(pool.map("square", [1, 2, 4])) == [(0, 1), (1, 4), (2, 16)]
        assert sorted(pool.map("negate", [1, 2])) == [(0, -1), (1, -2)]
        with pytest.raises(KeyError):
            list(pool.map("cube", [1]))
        procs = [w.proc for w in pool.workers]
        pool.close()
        assert not any(p.is_alive() for p in procs)
        with pytest.raises(RuntimeError):  # never an empty answer that would read as "no files"
            list(pool.map("square", [1]))


def test_a_map_left_half_way_gives_the_next_map_none_of_its_answers():
    with IsolatedPool({"square": _square_or_misbehave}, 1) as pool:
        first = pool.map("square", [2, 4, 6])
        assert next(first) == (0, 4)  # left there: 4 and 6 are still in the worker's pipe
        assert sorted(pool.map("square", [10, 11])) == [(0, 100), (1, 121)]


def test_a_worker_that_died_while_idle_is_replaced_before_the_next_pass():
    with IsolatedPool({"square": _square_or_misbehave}, 2) as pool:
        assert sorted(pool.map("square", [1, 2])) == [(0, 1), (1, 4)]
        os.kill(pool.workers[0].proc.pid, signal.SIGKILL)  # the OOM killer, between two passes
        pool.workers[0].proc.join(5)
        assert sorted(pool.map("square", [2, 4, 6, 10])) == [(0, 4), (1, 16), (2, 36), (3, 100)]
