"""Independent pieces of the report computed side by side: this process and forked copies of it, one per CPU.

The report's figures are independent and each is CPU-bound in matplotlib's Python code (ticks, text layout:
0.1–0.6 s each on a 2-core machine), so a thread pool gains nothing (the GIL) and a spawned pool loses what it
gains to importing matplotlib again. A forked copy starts in milliseconds with the study already loaded.

A copy only computes and sends back its results through a pipe; it ignores warnings (it must not write to a
stream that another thread of this process may have held when it was forked) and ends with ``os._exit``, so
it flushes none of this process's buffers and runs none of its exit handlers. Whatever goes wrong in a copy
— an exception, a crash, no answer within ``timeout_s`` — its share is computed again here, the normal way,
so an error surfaces with its usual traceback.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

from trainlab.measure.load import usable_cpus

T = TypeVar("T")

# A copy that has not answered by then is stopped and its share computed here (seconds; the heaviest figure of a
# large study takes a few seconds).
TIMEOUT_S = 120.0


def side_by_side(tasks: Sequence[Callable[[], T]], lanes: int | None = None, timeout_s: float = TIMEOUT_S) -> list[T]:
    """``[task() for task in tasks]``, computed in up to ``lanes`` processes at once (default: the usable CPUs);
    task ``i`` goes to lane ``i % lanes``, so put the heaviest first. Results must pickle."""
    lanes = min(lanes or len(usable_cpus()), len(tasks))
    if lanes <= 1 or not hasattr(os, "fork"):
        return [task() for task in tasks]
    share = [list(range(lane, len(tasks), lanes)) for lane in range(lanes)]
    children = [(lane, *_fork(tasks, share[lane])) for lane in range(1, lanes)]
    results: dict[int, T] = {i: tasks[i]() for i in share[0]}
    deadline = time.monotonic() + timeout_s
    for lane, pid, fd in children:
        got = _collect(pid, fd, deadline)
        results.update(got if got is not None else {i: tasks[i]() for i in share[lane]})
    return [results[i] for i in range(len(tasks))]


def _fork(tasks: Sequence[Callable[[], T]], mine: list[int]) -> tuple[int, int]:
    """Fork a copy that computes ``tasks[i]`` for ``i`` in ``mine`` and writes ``{i: result}`` (pickled, or
    None when it failed) to a pipe; returns (its pid, the pipe's read end)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy
        code = 0
        try:
            os.close(r)
            warnings.simplefilter("ignore")
            try:
                data = pickle.dumps({i: tasks[i]() for i in mine}, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:  # any: the parent computes this share itself and reports the error
                data = pickle.dumps(None)
            view = memoryview(data)
            while view:
                view = view[os.write(w, view) :]
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def _collect(pid: int, fd: int, deadline: float) -> dict[int, T] | None:
    """What the copy ``pid`` sent through ``fd`` by ``deadline`` (None: nothing usable); the copy is reaped."""
    chunks: list[bytes] = []
    try:
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                break
            chunk = os.read(fd, 1 << 20)
            if not chunk:  # end of file: the copy is done
                return pickle.loads(b"".join(chunks)) if chunks else None
            chunks.append(chunk)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # too slow: its share is computed here
        return None
    except (OSError, pickle.UnpicklingError, EOFError):
        return None
    finally:
        os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


__all__ = ["side_by_side"]
