"""Work fetched ahead of its consumer on a few threads, and handed over in the consumer's order.

The sources page concurrently with this: the caller names the keys it expects to need (the
SCIM startIndex of each page, a group's index), a bounded number of them run on worker
threads, and the caller takes each result when its turn comes, so every check that runs on
the results (totals, repeated ids, progress) stays in one thread and in order. A key the
caller did not announce runs in its own thread when asked for: a server that pages
differently from what was expected costs speed, never correctness.

The workers are daemon threads: a fetch abandoned by its caller (the TUI quitting during a
sync) must not keep the process alive until its requests time out.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Ahead(Generic[K, V]):
    """Runs work(key) for the announced keys, at most `workers` at a time and `ahead` keys ahead.

    ahead (at least workers) bounds what waits for the caller: a key that takes long (a group
    of many pages) must not leave the workers idle until the caller gets past it, so it may
    be worth more than workers; what the results weigh sets its bound. One worker means
    none: every key runs in the caller's thread when taken, one at a time.
    """

    def __init__(self, work: Callable[[K], V], workers: int, ahead: int | None = None) -> None:
        self.work = work
        self.workers = max(1, workers)
        self.ahead = max(self.workers, ahead or 0)
        self.keys: Iterator[K] = iter(())
        self.pending: dict[K, Future[V]] = {}
        self.jobs: queue.SimpleQueue[tuple[K, Future[V]] | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []

    def announce(self, keys: Iterable[K]) -> None:
        """The keys to run ahead, in the order they will be taken; read lazily, so they may be endless."""
        if self.workers > 1:
            self.keys = iter(keys)
            self._top_up()

    def take(self, key: K) -> V:
        """work(key)'s result (or its error), from a worker if it ran ahead, else run here."""
        future = self.pending.pop(key, None)
        if future is None:
            return self.work(key)
        try:
            return future.result()
        finally:
            self._top_up()

    def close(self) -> None:
        """Drop what has not started; what runs finishes in its thread and is thrown away."""
        for future in self.pending.values():
            future.cancel()
        self.pending.clear()
        self.keys = iter(())
        for _ in self.threads:
            self.jobs.put(None)
        self.threads.clear()

    def __enter__(self) -> Ahead[K, V]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _top_up(self) -> None:
        while len(self.pending) < self.ahead:
            key = next(self.keys, None)
            if key is None:
                return
            if key in self.pending:
                continue
            future: Future[V] = Future()
            self.pending[key] = future
            if len(self.threads) < self.workers:
                thread = threading.Thread(target=self._run, name="groupwarden-paging", daemon=True)
                thread.start()
                self.threads.append(thread)
            self.jobs.put((key, future))

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            key, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = self.work(key)
            except BaseException as exc:  # handed to the consumer, who raises it in its thread
                future.set_exception(exc)
            else:
                future.set_result(result)


def in_order(work: Callable[[int], V], count: int, workers: int, ahead: int | None = None) -> Iterator[V]:
    """work(0), work(1)... work(count - 1), run `workers` at a time, yielded in that order."""
    with Ahead(work, workers, ahead) as running:
        running.announce(range(count))
        for index in range(count):
            yield running.take(index)
