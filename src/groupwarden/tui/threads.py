"""The thread pool of the app's event loop: daemon threads that quitting never waits for.

Textual runs thread workers in the loop's default executor, and asyncio.run() waits for that
executor's threads on the way out; so does the interpreter, for every ThreadPoolExecutor. A sync
stuck on a server that drips one byte at a time would then keep the process alive after q.
Here each call gets its own daemon thread and shutting down waits for none: an abandoned call
dies with the process. Nothing is lost by that: a sync writes only after its whole listing is
fetched, and a write that has not committed is rolled back by the database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class DaemonThreads(ThreadPoolExecutor):
    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        threading.Thread(target=run, name="groupwarden-worker", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        # Nothing to join: the threads are daemons and none is kept for reuse.
        return None
