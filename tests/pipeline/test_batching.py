"""Micro-batching and admission with real threads (pipeline/batching.py, admission.py).

The stage functions here are plain functions over their items: what a model call is to
a batcher. Every test that needs callers queued behind a busy stage uses ``hold()``
and waits for ``depth``, so the batch sizes asserted are exact, not timing-dependent.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from pipeline.admission import Admission
from pipeline.batching import Batcher
from rag.errors import Busy


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.002)


class Recorder:
    """A stage that multiplies by 10, failing on "bad", and records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Any], int]] = []

    def __call__(self, items: list[Any]) -> list[Any]:
        self.calls.append((list(items), threading.get_ident()))
        if "bad" in items:
            raise ValueError("bad item")
        return [x * 10 for x in items]


def submit_all(batcher: Batcher[Any, Any], inputs: list[list[Any]]
               ) -> tuple[list[threading.Thread], dict[int, Any]]:
    results: dict[int, Any] = {}

    def call(k: int) -> None:
        try:
            results[k] = batcher.submit(inputs[k])
        except Exception as exc:
            results[k] = exc

    threads = [threading.Thread(target=call, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    return threads, results


def test_a_lone_caller_runs_at_once_in_its_own_thread() -> None:
    stage = Recorder()
    batcher: Batcher[int, int] = Batcher("s", stage, max_wait_s=1.0, expect=lambda: 1)
    start = time.monotonic()
    assert batcher.submit([1, 2]) == [10, 20]
    assert time.monotonic() - start < 0.5  # no wait window when nothing else is expected
    assert stage.calls == [([1, 2], threading.get_ident())]


def test_callers_queued_behind_a_busy_stage_share_one_call() -> None:
    stage = Recorder()
    sizes: list[tuple[str, int, int]] = []
    batcher: Batcher[int, int] = Batcher(
        "text", stage, max_batch=32, listeners=[lambda s, n, w: sizes.append((s, n, len(w)))])
    with batcher.hold():
        threads, results = submit_all(batcher, [[k] for k in range(8)] + [[100, 101]])
        wait_for(lambda: batcher.depth == 10)
    for t in threads:
        t.join(10)
    assert len(stage.calls) == 1 and sorted(stage.calls[0][0]) == [*range(8), 100, 101]
    assert results == {**{k: [k * 10] for k in range(8)}, 8: [1000, 1010]}
    assert sizes == [("text", 10, 9)]
    assert batcher.depth == 0


def test_calls_never_exceed_max_batch_and_keep_requests_whole() -> None:
    stage = Recorder()
    batcher: Batcher[int, int] = Batcher("s", stage, max_batch=4)
    inputs = [[k, k + 1000] for k in range(6)] + [[7]]
    with batcher.hold():
        threads, results = submit_all(batcher, inputs)
        wait_for(lambda: batcher.depth == 13)
    for t in threads:
        t.join(10)
    assert all(len(items) <= 4 for items, _ in stage.calls)
    assert sum(len(items) for items, _ in stage.calls) == 13
    assert results == {k: [x * 10 for x in inputs[k]] for k in range(len(inputs))}


def test_a_bad_item_fails_only_its_own_caller() -> None:
    stage = Recorder()
    batcher: Batcher[Any, Any] = Batcher("s", stage)
    with batcher.hold():
        threads, results = submit_all(batcher, [[1], ["bad"], [3]])
        wait_for(lambda: batcher.depth == 3)
    for t in threads:
        t.join(10)
    assert results[0] == [10] and results[2] == [30]
    assert isinstance(results[1], ValueError)


def test_the_wait_window_is_used_only_while_more_queries_are_expected() -> None:
    stage = Recorder()
    in_flight = [3]
    batcher: Batcher[int, int] = Batcher("s", stage, max_wait_s=0.3,
                                         expect=lambda: in_flight[0])
    threads, results = submit_all(batcher, [[1]])
    time.sleep(0.1)  # the first caller leads and waits for the two others expected
    threads2, results2 = submit_all(batcher, [[2], [3]])
    for t in threads + threads2:
        t.join(10)
    assert [sorted(items) for items, _ in stage.calls] == [[1, 2, 3]]
    assert results == {0: [10]} and results2 == {0: [20], 1: [30]}


def test_a_stage_may_call_itself() -> None:
    batcher: Batcher[int, int]

    def stage(items: list[int]) -> list[int]:
        return [batcher.submit([x - 1])[0] if x > 0 else 0 for x in items]

    batcher = Batcher("s", stage)
    assert batcher.submit([3]) == [0]


def test_admission_sheds_over_the_limit_with_a_retry_after() -> None:
    admission = Admission(2)
    leave = threading.Event()

    def hold() -> None:
        with admission.admit():
            leave.wait(10)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for t in holders:
        t.start()
    wait_for(lambda: admission.in_flight == 2)
    with pytest.raises(Busy) as err, admission.admit():
        pass
    assert err.value.retry_after_s >= 1
    assert "api.max_queue" in str(err.value)
    leave.set()
    for t in holders:
        t.join(10)
    assert admission.in_flight == 0 and admission.shed == 1
    with admission.admit():  # free again
        assert admission.in_flight == 1


def test_a_held_place_is_not_counted_twice_in_a_worker_thread() -> None:
    """A surface takes the place on its event loop; the worker thread it hands the
    query to inherits the context, and the pipeline's own admission is a no-op."""
    admission = Admission(1)
    seen: list[int] = []

    def worker() -> None:
        with admission.admit():
            seen.append(admission.in_flight)

    with admission.admit():
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(worker,))
        t.start()
        t.join(10)
    assert seen == [1]
    assert admission.shed == 0


def test_run_slots_are_handed_out_in_arrival_order() -> None:
    """Only ``workers`` admitted queries run at once; the others wait their turn, and a
    query that comes back at once cannot take a slot from one that has waited."""
    admission = Admission(10, workers=1)
    order: list[str] = []
    release = threading.Event()

    def query(name: str, hold: threading.Event | None = None) -> None:
        with admission.run():
            order.append(name)
            if hold is not None:
                hold.wait(10)

    first = threading.Thread(target=query, args=("first", release))
    first.start()
    wait_for(lambda: order == ["first"])
    waiters = []
    for k, name in enumerate(["second", "third"]):
        t = threading.Thread(target=query, args=(name,))
        t.start()
        waiters.append(t)
        wait_for(lambda k=k: admission.queued == k + 1)
    assert admission.in_flight == 3
    release.set()
    query("again")  # arrives as the slot is freed: it must queue behind the others
    for t in [first, *waiters]:
        t.join(10)
    assert order == ["first", "second", "third", "again"]
    assert admission.in_flight == 0 and admission.queued == 0
