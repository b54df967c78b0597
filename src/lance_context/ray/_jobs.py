"""What ``ingest`` and ``reembed`` share: importing Ray, reading inputs, running a job's workers.

Workers are Ray Data actors (``map_batches`` with an actor pool): each holds one
``BulkWorker`` and so loads the embedder once, Ray restarts one that dies and
retries its batch (a bounded number of times), and Ray Data shows progress. A batch
a dead worker had half written leaves only data files no version references.
"""

from __future__ import annotations

import contextlib
import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from lance_context import LanceContextError, StoreError
from lance_context.adapters import BulkPart

__all__ = [
    "INSTALL",
    "PART",
    "POSITION",
    "as_dataset",
    "job_context",
    "part_row",
    "parts_of",
    "require_ray",
    "run_workers",
]

INSTALL = "pip install 'lance-context[ray]'"
#: The column holding each input row's position (append order) on its way to a worker.
POSITION = "_lance_context_position"
#: The column a worker returns its pickled ``BulkPart`` in.
PART = "_lance_context_part"


def require_ray() -> Any:
    """The ``ray`` module, with Ray Data imported.

    Raises:
        ImportError: Ray is not installed; the message names the extra to install.
    """
    try:
        import ray.data  # Ray Data registers itself on import

        import ray
    except ImportError as exc:
        raise ImportError(f"lance_context.ray needs Ray Data: {INSTALL}") from exc
    return ray


def as_dataset(items: Any) -> Any:
    """A Ray Dataset of ``items``.

    Accepts a Ray Dataset; a pandas DataFrame or pyarrow Table; a path to Parquet,
    JSON Lines, CSV or Lance data (read by Ray Data, so every worker must reach it);
    or an iterable of texts, dicts or ``ContextRecord`` objects.
    """
    ray = require_ray()
    data = ray.data
    if isinstance(items, data.Dataset):
        return items
    if isinstance(items, pa.Table):
        return data.from_arrow(items)
    if type(items).__name__ == "DataFrame" and hasattr(items, "to_dict"):
        return data.from_pandas(items)
    if isinstance(items, (str, Path)):
        path = str(items)
        name = path.rstrip("/").lower()
        if name.endswith((".jsonl", ".json", ".ndjson")):
            return data.read_json(path)
        if name.endswith(".csv"):
            return data.read_csv(path)
        if name.endswith(".lance"):
            return data.read_lance(path)
        return data.read_parquet(path)
    return data.from_items(list(items))


@contextlib.contextmanager
def job_context(progress: bool) -> Iterator[Any]:
    """Ray Data settings for one job (progress bars, block order, worker errors as raised); restored after."""
    ray = require_ray()
    with warnings.catch_warnings():
        # Ray 2.60's first DataContext warns about a setting it sets itself (use_push_based_shuffle).
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ray.data.DataContext.get_current()
    options = context.execution_options
    saved = (context.enable_progress_bars, options.preserve_order, context.raise_original_map_exception)
    context.enable_progress_bars = progress
    options.preserve_order = True
    context.raise_original_map_exception = True  # an InvalidRecordError reaches the caller as itself
    try:
        yield ray
    finally:
        context.enable_progress_bars, options.preserve_order, context.raise_original_map_exception = saved


def default_workers(ray: Any) -> int:
    """One worker per CPU of the cluster."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def run_workers(
    dataset: Any,
    worker: type,
    args: tuple[Any, ...],
    *,
    batch_size: int,
    workers: int | None,
    retries: int,
    batches: int,
) -> list[BulkPart]:
    """Run ``worker(*args)`` actors over ``dataset``'s (about ``batches``) batches; return the parts.

    Raises:
        LanceContextError: The one a worker raised (an invalid record, a failing embedder).
        StoreError: Workers failed otherwise (Ray's error is the cause); nothing was committed.
    """
    ray = require_ray()
    size = max(1, min(workers or default_workers(ray), batches))  # an idle actor still holds a CPU
    try:
        with warnings.catch_warnings():
            # Ray 2.60 deprecates passing actor options this way but offers no other way to
            # bound restarts (its default retries a worker that always dies forever);
            # pyproject pins ray below 2.64, which removes it.
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*is deprecated")
            mapped = dataset.map_batches(
                worker,
                fn_constructor_args=args,
                batch_size=batch_size,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=size),
                num_cpus=1,
                max_restarts=retries,
                max_task_retries=retries,
            )
        written = mapped.take_all()
    except Exception as exc:
        found = _lance_context_error(exc)
        if found is not None:
            raise found from exc
        first_line = (str(exc).splitlines() or [""])[0][:200]
        raise StoreError(
            f"the Ray job failed ({type(exc).__name__}: {first_line}); nothing was written to the store"
        ) from exc
    return parts_of(written)


def parts_of(rows: list[dict[str, Any]]) -> list[BulkPart]:
    """The parts in a job's output rows."""
    return [pickle.loads(row[PART]) for row in rows]


def part_row(part: BulkPart) -> pa.Table:
    """A worker's output: one row holding its pickled part."""
    return pa.table({PART: pa.array([pickle.dumps(part)], pa.binary())})


def _lance_context_error(exc: BaseException) -> LanceContextError | None:
    """The lance-context error a Ray error wraps, if any (Ray nests the worker's exception)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, LanceContextError):
            return current
        cause = getattr(current, "cause", None)
        stack.extend(
            [cause if isinstance(cause, BaseException) else None, current.__cause__, current.__context__]
        )
    return None
