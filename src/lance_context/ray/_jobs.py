"""What ``ingest`` and ``reembed`` share: importing Ray, reading inputs, running a job's workers.

Workers are Ray Data tasks (``map_batches`` with a task pool), so a job reuses the
cluster's idle worker processes instead of starting one actor process per worker (a
few seconds each). Each process keeps one ``BulkWorker`` for the job it last worked
on (``job_worker``), so it opens the store and loads the embedder once per job, not
once per batch. Ray runs a batch whose process died again (a bounded number of
times), and Ray Data shows progress. A batch a dead worker had half written leaves
only data files no version references.
"""

from __future__ import annotations

import contextlib
import gc
import math
import pickle
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lance_context import InvalidRecordError, LanceContextError, StoreError
from lance_context.adapters import BulkPart

from ._mixed import tag_frame, tag_rows
from ._rows import COLUMNS, metadata_text

__all__ = [
    "INSTALL",
    "PART",
    "POSITION",
    "as_dataset",
    "check_job",
    "check_positive",
    "job_context",
    "job_failure",
    "job_worker",
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
    or an iterable of texts, dicts or ``ContextRecord`` objects. A content column of
    a DataFrame or of dicts that mixes kinds (texts and bytes) travels tagged (``_mixed``).
    """
    ray = require_ray()
    data = ray.data
    if isinstance(items, data.Dataset):
        return items
    if isinstance(items, pa.Table):
        return data.from_arrow(items)
    if type(items).__name__ == "DataFrame" and hasattr(items, "to_dict"):
        return data.from_pandas(tag_frame(_frame_metadata_as_text(items)))
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
    return data.from_items(tag_rows([_metadata_as_text(item) for item in items]))


def check_positive(name: str, value: object, *, least: int = 1) -> None:
    """Refuse a size argument that is not an integer of at least ``least``, before any work starts."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        kind = "a positive integer" if least == 1 else f"an integer of at least {least}"
        raise InvalidRecordError(f"{name} must be {kind}, got {value!r}")


def check_job(workers: object, max_retries: object) -> None:
    """Refuse ``workers`` (None or positive) and ``max_retries`` (zero or more) before any work starts.

    Ray reads a negative restart count as "restart forever", so it is refused here.
    """
    if workers is not None:
        check_positive("workers", workers)
    check_positive("max_retries", max_retries, least=0)


def _metadata_as_text(item: Any) -> Any:
    """A dict row with its metadata and extra keys as JSON text (see ``metadata_text``)."""
    if not isinstance(item, Mapping):
        return item
    extras = {k: v for k, v in item.items() if k not in COLUMNS}
    text = metadata_text(item.get("metadata"), extras)
    if text is None:
        return item
    if isinstance(text, str) or not extras:
        return {**{k: v for k, v in item.items() if k in COLUMNS}, "metadata": text}
    return item  # not JSON-able: left as it is for row_to_record to refuse


def _frame_metadata_as_text(frame: Any) -> Any:
    """A DataFrame whose metadata and object-typed extra columns travel as JSON text.

    Empty cells (NaN, as pandas fills a key some rows lack) of the record's own object
    columns become None, and vectors travel as lists (Ray cannot make a tensor column
    of vectors and empty cells).
    """
    own = {c: frame[c].map(_cell) for c in frame.columns if c in COLUMNS and frame[c].dtype == object}
    if own:
        frame = frame.assign(**own)
    extras = [c for c in frame.columns if c not in COLUMNS and frame[c].dtype == object]
    if "metadata" not in frame.columns and not extras:
        return frame
    given = frame["metadata"] if "metadata" in frame.columns else [None] * len(frame)
    rows = frame[extras].to_dict("records") if extras else [{}] * len(frame)
    texts = [
        metadata_text(None if _missing(m) else m, {k: v for k, v in r.items() if not _missing(v)})
        for m, r in zip(given, rows)
    ]
    return frame.drop(columns=extras).assign(metadata=texts)


def _cell(value: Any) -> Any:
    """A cell of a record column: None when empty, a vector as a list."""
    if _missing(value):
        return None
    return value.tolist() if isinstance(value, np.ndarray) and value.ndim == 1 else value


def _missing(value: Any) -> bool:
    """Whether a DataFrame cell is empty (None or a float NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


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


#: This worker process's state for the job it last worked on: (job token, state).
_CURRENT: list[tuple[str, Any]] = []


def job_worker(token: str, make: Callable[[], Any]) -> Any:
    """This process's state for job ``token``, made by ``make()`` on the job's first batch here.

    Ray runs one task at a time in a worker process; a new job's state replaces the last
    one's, so a process holds at most one store handle and one embedder.
    """
    if not _CURRENT or _CURRENT[0][0] != token:
        _CURRENT.clear()  # the last job's state goes before the new one loads its embedder
        _CURRENT.append((token, make()))
    return _CURRENT[0][1]


def run_workers(
    dataset: Any,
    task: Callable[..., pa.Table],
    args: tuple[Any, ...],
    *,
    batch_size: int,
    workers: int | None,
    retries: int,
    batches: int,
) -> list[BulkPart]:
    """Run ``task(batch, token, *args)`` over ``dataset``'s (about ``batches``) batches; return the parts.

    ``token`` names this job (see ``job_worker``). At most ``workers`` tasks run at once.

    Raises:
        LanceContextError: The one a worker raised (an invalid record, a failing embedder).
        StoreError: Workers failed otherwise (Ray's error text is in its notes); nothing was committed.
    """
    ray = require_ray()
    size = max(1, min(workers or default_workers(ray), batches))
    try:
        with warnings.catch_warnings():
            # Ray 2.60 deprecates passing task options this way but offers no other way to
            # bound retries (its default runs a batch whose worker always dies forever);
            # pyproject pins ray below 2.64, which removes it.
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*is deprecated")
            mapped = dataset.map_batches(
                task,
                fn_args=(uuid.uuid4().hex, *args),
                batch_size=batch_size,
                batch_format="pyarrow",
                compute=ray.data.TaskPoolStrategy(size=size),
                num_cpus=1,
                max_retries=retries,
            )
        written = mapped.take_all()
    except Exception as exc:
        failure = job_failure(exc)
    else:
        return parts_of(written)
    # Ray's error holds a reference cycle through its tracebacks (and the job's
    # dataset): collect it now. ``failure`` carries none of it.
    mapped = None
    gc.collect()
    raise failure


def job_failure(exc: BaseException) -> LanceContextError:
    """The error a failed job raises: the one a worker raised, or a StoreError with Ray's text."""
    found = _lance_context_error(exc)
    if found is not None:
        _drop_retry_advice(found)
        return found.with_traceback(None)
    reason = _root_cause(exc)
    first_line = (str(reason).splitlines() or [""])[0][:200]
    error = StoreError(
        f"the Ray job failed ({type(reason).__name__}: {first_line}); nothing was written to the store"
    )
    error.add_note("".join(traceback.format_exception_only(exc))[-4000:])
    return error


def _root_cause(exc: BaseException) -> BaseException:
    """The exception a Ray task error wraps (its ``cause``), else ``exc``: its text says what went wrong."""
    seen = {id(exc)}
    cause = getattr(exc, "cause", None)
    while isinstance(cause, BaseException) and id(cause) not in seen:
        exc = cause
        seen.add(id(exc))
        cause = getattr(exc, "cause", None)
    return exc


def _drop_retry_advice(error: LanceContextError) -> None:
    """Take back what Ray Data appends to a worker's error message (advice on retrying a transient error).

    The job's errors are not transient: the advice would point the caller at Ray settings.
    """
    if error.args and isinstance(error.args[0], str):
        message, marker = error.args[0], "\nFailed to apply UDF transform after "
        if marker in message and "\nTo change retry attempts" in message:
            error.args = (message[: message.rindex(marker)], *error.args[1:])


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
        cause = getattr(current, "cause", None)
        if isinstance(current, LanceContextError) and not isinstance(cause, BaseException):
            return current  # the worker's own error, not Ray's wrapper of it
        stack.extend(
            [cause if isinstance(cause, BaseException) else None, current.__cause__, current.__context__]
        )
    return None
