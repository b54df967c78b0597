"""Search, recall and the search log: this part of :class:`ContextStore`'s surface.

Split out of ``_store.py`` for size only. It holds no state and no logic: each method hands
its call to a collaborator (the search recorder, the recaller, the replayer) that the store
wired around its :class:`~lance_context._state.StoreState`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from ._fusion import FusionOptions
from ._recall import RecallOptions
from ._recollect import Recall, Recaller
from ._replay import Replay, Replayer
from ._sealed import check_query
from ._search import SearchMode
from ._searchlog import LoggedSearch, Recorder, SearchResults
from ._state import StoreState

__all__ = ["RetrievalMethods"]


class RetrievalMethods:
    """The search, recall and replay methods of :class:`~lance_context.ContextStore`."""

    _state: StoreState
    _recorder: Recorder
    _recaller: Recaller

    def search(
        self,
        query: Any,
        *,
        k: int = 10,
        mode: SearchMode = "vector",
        run_id: str | None = None,
        roles: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[Any, Any] | None = None,
        version: int | str | None = None,
        mmr: bool | Literal["all", "last"] = False,
        fetch_k: int | None = None,
        lambda_mult: float = 0.5,
        vector: Any = None,
        alpha: float | None = None,
        fusion: FusionOptions | None = None,
        record: bool | None = None,
    ) -> SearchResults:
        """Find the records most relevant to ``query``; a list of hits, best first.

        Args:
            query: Text, a vector, or an image (when the embedder embeds images).
            k: How many hits.
            mode: ``vector`` (cosine), ``text`` (BM25) or ``hybrid`` (both, fused).
            run_id: Only this session's records.
            roles: Only these roles.
            since: Created at or after this time.
            until: Created before this time.
            where: A filter dict, applied before the top-k is cut.
            version: Search the store as it was at this version or tag.
            mmr: Re-rank vector candidates by maximal marginal relevance: ``True`` (or
                ``"all"``) weighs a candidate's cosine to the closest hit already chosen, as
                LangChain does; ``"last"`` its cosine to the hit chosen last, as LlamaIndex
                does. Scores stay cosine similarities.
            fetch_k: Candidates read before the final cut (never fewer than ``k``). MMR
                re-ranks the top ``fetch_k`` vector hits (default ``4 * k``); hybrid reads
                each channel's top ``fetch_k`` (default ``fusion.depth``, 100) and a value
                above ``fusion.depth`` also deepens the fusion. Unused otherwise.
            lambda_mult: MMR trade-off: 1 is pure relevance, 0 pure diversity.
            vector: A query vector for the vector channel (``query`` is then the text
                the text channel searches), for callers that embed queries themselves.
            alpha: Hybrid weight of the vector channel (0: text only, 1: vector only);
                None uses ``fusion``'s weights.
            fusion: How hybrid fuses the channels (default :class:`FusionOptions`: z-scores
                of each channel's top 100, text 0.8 and vector 0.2, measured on conversation).
            record: Write the search to the search log (its id: ``hits.search_id``) so
                :meth:`replay` can re-run it; None follows :attr:`record_searches`.

        Raises:
            SearchError: Unknown mode, bad k, or no way to embed the query.
        """
        check_query(self._state.cipher, where=where, mode=mode)
        return self._recorder.search(
            query, record, k=k, mode=mode, run_id=run_id, roles=roles, since=since, until=until, where=where,
            version=version, mmr=mmr, fetch_k=fetch_k, lambda_mult=lambda_mult, vector=vector, alpha=alpha,
            fusion=fusion,
        )  # fmt: skip

    def recall(
        self,
        query: str,
        *,
        run_id: str | None = None,
        k: int | None = None,
        before: int | None = None,
        after: int | None = None,
        roles: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Mapping[Any, Any] | None = None,
        vector: Any = None,
        version: int | str | None = None,
        options: RecallOptions | None = None,
    ) -> list[Recall]:
        """What in a conversation is relevant to ``query``: the best matches, each with its neighbours.

        Both channels rank the turns, their scores are fused, and each turn gets part of
        the score of the turn after it; the best ``k`` matches come back best first, each
        with ``before``/``after`` turns around it (in conversation order, none twice).

        Args:
            query: What to look for (text).
            run_id: The conversation (without it: matches across sessions, no neighbours).
            k: Matches to return (default ``options.k``, 10); neighbours come on top.
            before: Turns returned before each match (default 1).
            after: Turns returned after each match (default 1).
            roles: Only these roles.
            since: Created at or after this time.
            until: Created before this time.
            where: A filter dict, applied before ranking.
            vector: A query vector, for callers that embed queries themselves.
            version: Recall as the store was at this version or tag.
            options: Fusion and defaults (:class:`RecallOptions`).
        """
        text_only = vector is None and self._state.embedding.embedder is None
        check_query(self._state.cipher, where=where, mode="text" if text_only else None)
        return self._recaller.recall(
            query, run_id=run_id, k=k, before=before, after=after, roles=roles, since=since, until=until,
            where=where, vector=vector, version=version, options=options,
        )  # fmt: skip

    @property
    def record_searches(self) -> bool:
        """Record every search made through this store object, adapters' included (default False)."""
        return self._recorder.enabled

    @record_searches.setter
    def record_searches(self, on: bool) -> None:
        self._recorder.enabled = bool(on)

    def search_log(self, limit: int | None = None) -> list[LoggedSearch]:
        """Recorded searches of every branch, newest first (the log lives beside the store)."""
        return self._recorder.log.entries(limit)

    def replay(self, search_id: str, *, at: Literal["logged", "latest"] | int = "logged") -> Replay:
        """Re-run a recorded search exactly; ``at="latest"`` (or a version): the reason for each change.

        Raises:
            SearchNotFoundError: No such search in the log.
            VersionNotFoundError: Its version or branch was removed.
        """
        return Replayer(self._state, self._recorder.log).replay(search_id, at)
