"""A background thread that sweeps expired store items, as LangGraph's SQL stores offer."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import Any, Protocol

__all__ = ["TTLSweeper"]

log = logging.getLogger("lance_context")


class _Sweepable(Protocol):
    ttl_config: Any

    def sweep_ttl(self) -> int: ...


class TTLSweeper:
    """Runs ``owner.sweep_ttl()`` every few minutes until stopped."""

    def __init__(self, owner: _Sweepable) -> None:
        """Sweep ``owner`` (a store with ``sweep_ttl`` and ``ttl_config``)."""
        self._owner = owner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, interval_minutes: float | None = None) -> concurrent.futures.Future[None]:
        """Start sweeping; the returned future completes when the sweeper stops."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        config = self._owner.ttl_config
        if not config:  # no TTL configured: nothing to sweep (as LangGraph's SQL stores do)
            future.set_result(None)
            return future
        if self._thread is not None and self._thread.is_alive():
            future.add_done_callback(lambda f: self._stop.set() if f.cancelled() else None)
            return future
        interval = 60.0 * float(interval_minutes or config.get("sweep_interval_minutes") or 5)
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    swept = self._owner.sweep_ttl()
                    if swept:
                        log.info("lance-context swept %d expired store items", swept)
                except Exception:  # a failed sweep must not end the sweeper; the next one retries
                    log.exception("lance-context TTL sweep failed")
            if not future.done():
                future.set_result(None)

        self._thread = threading.Thread(target=loop, daemon=True, name="lance-context-ttl-sweeper")
        self._thread.start()
        future.add_done_callback(lambda f: self._stop.set() if f.cancelled() else None)
        return future

    def stop(self, timeout: float | None = None) -> bool:
        """Stop sweeping; False when the thread is still running after ``timeout`` seconds."""
        if self._thread is None or not self._thread.is_alive():
            return True
        self._stop.set()
        self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        if stopped:
            self._thread = None
        return stopped
