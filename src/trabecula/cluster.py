"""Where independent tasks run: in this process, on a local dask cluster, or on a remote dask scheduler.

Large work (chunked morphometry, a folder of scans) is cut into independent tasks. :func:`executor` opens
the place they run and :func:`run_tasks` runs them there with one progress bar across the cluster:

* nothing given — one after the other in this process (the low-memory path: one task's data at a time);
* ``workers=N`` — a ``dask.distributed.LocalCluster`` of N worker processes with one thread each on this
  machine (the tasks' numba kernels then run one thread per worker);
* ``scheduler="tcp://HOST:8786"`` — an existing ``dask scheduler`` with ``dask worker`` processes on any number
  of machines (they need trabecula installed and the input files at the same paths).

dask.distributed re-runs the tasks of a worker that dies (up to ``distributed.scheduler.allowed-failures``
times), so a lost worker costs time, not results. Tasks must be pure functions of their arguments.

Reference: Rocklin M (2015) Dask: parallel computation with blocked algorithms and task scheduling.
Proc. 14th Python in Science Conf.; dask.distributed documentation (https://distributed.dask.org).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from trabecula.errors import ParameterError
from trabecula.progress import progress_steps

#: Seconds to wait for a remote scheduler before giving up with a one-line error.
CONNECT_TIMEOUT_S = 10


def check_workers(workers: int | None, name: str = "--workers") -> int | None:
    """``workers`` as a positive int (or None), else a one-line :class:`ParameterError`."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(name, f"must be a positive whole number of worker processes, got {workers!r}")
    return workers


def _single_threaded_worker() -> None:
    """Run on every worker of a LocalCluster: one numba/BLAS thread per single-threaded worker process."""
    import numba

    numba.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


@contextlib.contextmanager
def executor(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """Yield a ``distributed.Client`` (remote ``scheduler`` address or a LocalCluster of ``workers``
    processes), or ``None`` for in-process execution. The local cluster is closed on exit."""
    workers = check_workers(workers)
    if scheduler is not None and workers is not None:
        raise ParameterError("--scheduler", "give either --scheduler ADDRESS or --workers N, not both")
    if scheduler is None and workers is None:
        yield None
        return
    import logging

    from distributed import Client, LocalCluster

    # the scheduler's and workers' own chatter (ports, dashboard) is not the user's business
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker",
                 "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler is not None:
        address = str(scheduler).strip()
        if not address:
            raise ParameterError("--scheduler", "empty address; give tcp://HOST:PORT of a running `dask scheduler`")
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as e:
            raise ParameterError("--scheduler", f"cannot reach a dask scheduler at {address} within "
                                                f"{CONNECT_TIMEOUT_S} s ({type(e).__name__}); start one with "
                                                "`dask scheduler` and workers with `dask worker ADDRESS`") from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        client.run(_single_threaded_worker)
        yield client
    finally:
        client.close()
        cluster.close()


def n_workers(client: Any) -> int:
    """Number of workers a client's scheduler has (1 for in-process execution)."""
    if client is None:
        return 1
    return max(1, len(client.scheduler_info().get("workers", {})))


def run_tasks(fn: Callable[..., Any], args: Sequence[tuple], client: Any = None, description: str = "tasks",
              on_result: Callable[[int, Any], None] | None = None, shared: dict[str, Any] | None = None) -> list[Any]:
    """Run ``fn(*a, **shared)`` for every tuple ``a`` of ``args`` (in this process when ``client`` is None, else
    on the cluster) with one progress bar; returns the results in the order of ``args``.

    ``shared`` keyword arguments are sent to the cluster once (``client.scatter``) rather than with every task.
    ``on_result(index, result)`` is called in this process as each task finishes (in completion order), e.g.
    to save the result at once so that a stopped run can be resumed.
    """
    shared = dict(shared or {})
    results: list[Any] = [None] * len(args)
    with progress_steps(description, len(args)) as advance:
        if client is None:
            for i, a in enumerate(args):
                results[i] = fn(*a, **shared)
                if on_result is not None:
                    on_result(i, results[i])
                advance()
            return results
        from distributed import as_completed

        remote = {k: client.scatter(v, broadcast=True) if _worth_scattering(v) else v for k, v in shared.items()}
        futures = [client.submit(fn, *a, **remote, pure=False) for a in args]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in as_completed(futures):
                i = index[fut.key]
                results[i] = fut.result()
                if on_result is not None:
                    on_result(i, results[i])
                advance()
        finally:
            client.cancel(futures)
    return results


def _worth_scattering(value: Any) -> bool:
    """Large arrays are scattered once to the workers; small values travel with each task."""
    nbytes = getattr(value, "nbytes", 0)
    return isinstance(nbytes, int) and nbytes > 1_000_000 and not hasattr(value, "dask")
