"""Rerankers: any reranking object a user already has, as one callable.

A reranker reorders the best fused candidates of :meth:`ContextStore.recall` (or an
adapter's recall) by reading query and text together, as a cross-encoder does. Any of
these is accepted, and :func:`as_reranker` turns it into ``(query, texts) -> scores``:

- a plain callable ``(query, texts) -> scores`` (larger is better; ``None`` or
  ``-inf`` drops a candidate, NaN is no opinion: see :func:`rerank_order`);
- a sentence-transformers ``CrossEncoder`` (anything with ``predict(pairs)``);
- a LangChain document compressor (``compress_documents``), such as
  ``CrossEncoderReranker``: documents it drops are dropped;
- a LlamaIndex node postprocessor (``postprocess_nodes``), such as
  ``SentenceTransformerRerank``: nodes it drops are dropped.

A document (``metadata["relevance_score"]``) or node (``score``) returned with a NaN
score is no opinion, as a NaN score from a callable is: it ranks after the others.

Recall calls a reranker synchronously: an ``async`` callable, or an object with only
an async method (``acompress_documents``, ``apostprocess_nodes``), is refused. What a
reranker returns is checked: one number (or None) per candidate from a callable or a
cross-encoder; documents or nodes from the candidates it was given, each at most once,
from a compressor or a postprocessor. A new object is matched to its candidate by the
position it carries, or else by its text; parts of one candidate (a compressor that
splits documents) rank it by the best of them. Anything else raises a
:class:`SearchError` saying what was wrong; an exception the reranker raises itself is
passed on unchanged.

The framework translations import their framework only when such an object is given.

Example:
    >>> rerank = as_reranker(lambda query, texts: [float(query in t) for t in texts])
    >>> rerank("tea", ["coffee", "green tea"])
    [0.0, 1.0]
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._errors import SearchError

__all__ = ["Reranker", "as_reranker", "rerank_order"]

Reranker = Callable[[str, Sequence[str]], Sequence[float | None]]
"""``(query, texts) -> one score per text`` (larger is better; None or -inf drops it, NaN is no opinion)."""

#: The metadata key (LangChain) and node id prefix (LlamaIndex) that carry a candidate's position.
_POSITION = "lance_context_position"


def as_reranker(reranker: object) -> Reranker:
    """The ``(query, texts) -> scores`` form of a callable, cross-encoder, compressor or postprocessor.

    Raises:
        TypeError: The object is none of those, a class rather than an instance of one,
            or only has an async form.
    """
    if isinstance(reranker, _Wrapped):
        return reranker
    if isinstance(reranker, type) and any(
        hasattr(reranker, name) for name in ("compress_documents", "postprocess_nodes", "predict")
    ):
        raise TypeError(f"the reranker {reranker.__qualname__!r} is a class: pass an instance of it")
    if hasattr(reranker, "compress_documents"):
        return _Wrapped(reranker, lambda q, t: _by_position(_compressed(reranker, q, t), len(t)))
    if hasattr(reranker, "postprocess_nodes"):
        return _Wrapped(reranker, lambda q, t: _by_position(_postprocessed(reranker, q, t), len(t)))
    predict = getattr(reranker, "predict", None)
    if callable(predict):
        _refuse_async(reranker, predict)
        _check_arity(reranker, predict, ([("query", "text")],), "predict(pairs)")
        return _Wrapped(
            reranker, lambda q, t: _checked_scores(reranker, predict([(q, x) for x in t]), len(t))
        )
    if callable(reranker):
        _refuse_async(reranker, reranker)
        _check_arity(reranker, reranker, ("query", ["text"]), "(query, texts)")
        return _Wrapped(reranker, reranker, framework=False)
    for method in ("acompress_documents", "apostprocess_nodes", "apredict"):
        if callable(getattr(reranker, method, None)):
            raise TypeError(
                f"{_name(reranker)} has only an async {method}(); recall calls its reranker "
                "synchronously: give one with compress_documents, postprocess_nodes, predict, "
                "or a plain (query, texts) -> scores callable"
            )
    raise TypeError(
        f"a reranker must be a callable (query, texts) -> scores, a CrossEncoder, a LangChain "
        f"document compressor or a LlamaIndex node postprocessor, got {type(reranker).__name__}"
    )


class _Wrapped:
    """A reranker's ``(query, texts) -> scores`` form that knows what it was made from."""

    def __init__(
        self, source: object, call: Callable[[str, Sequence[str]], Any], *, framework: bool = True
    ) -> None:
        self.source = source
        self._call = call
        self._framework = framework

    def __call__(self, query: str, texts: Sequence[str]) -> Any:
        try:
            return self._call(query, texts)
        except NotImplementedError as exc:  # an async-only framework object's sync method
            if not self._framework:
                raise
            raise SearchError(
                f"the reranker {_name(self.source)} has no synchronous form (NotImplementedError"
                f"{': ' + str(exc) if str(exc) else ''}); recall calls its reranker synchronously"
            ) from exc


def rerank_order(reranker: Reranker, query: str, texts: Sequence[str]) -> list[int]:
    """Positions of ``texts`` best first by the reranker's scores, dropped ones left out.

    A None or ``-inf`` score drops its text. A NaN score is no opinion: those texts come
    after every text with a real score, in their incoming order (all NaN keeps the
    incoming order). ``inf`` ranks first; ties keep the incoming order.

    Raises:
        SearchError: The reranker returned something other than one number (or None) per
            text, or an awaitable (an async reranker).
    """
    source = reranker.source if isinstance(reranker, _Wrapped) else reranker
    scores = _checked_scores(source, reranker(query, list(texts)), len(texts))
    scored = [(i, s) for i, s in enumerate(scores) if s is not None and not math.isnan(s) and s != -math.inf]
    no_opinion = [i for i, s in enumerate(scores) if s is not None and math.isnan(s)]
    return [i for i, _ in sorted(scored, key=lambda pair: (-pair[1], pair[0]))] + no_opinion


def _checked_scores(source: object, returned: Any, n: int) -> list[float | None]:
    """``returned`` as one float (or None) per candidate; a clear error for anything else."""
    who = f"the reranker {_name(source)}"
    if inspect.isawaitable(returned):
        close = getattr(returned, "close", None)
        if callable(close):
            close()  # never awaited: no warning about it later
        raise SearchError(f"{who} returned an awaitable (an async reranker): recall calls it synchronously")
    if returned is None or isinstance(returned, (str, bytes, Mapping)) or not isinstance(returned, Iterable):
        raise SearchError(
            f"{who} must return one score per candidate (a list of numbers or None), "
            f"got {type(returned).__name__}"
        )
    if getattr(returned, "ndim", 1) != 1:  # a 0-d or 2-d array
        shape = getattr(returned, "shape", "?")
        raise SearchError(f"{who} must return one score per candidate, got an array of shape {shape}")
    scores = list(returned)
    if len(scores) != n:
        raise SearchError(f"the reranker returned {len(scores)} scores for {n} candidates")
    out: list[float | None] = []
    for i, score in enumerate(scores):
        if score is None:
            out.append(None)
            continue
        if isinstance(score, (str, bytes)) or getattr(score, "ndim", 0) != 0:
            raise SearchError(f"{who} returned {score!r} for candidate {i}: a score must be a number or None")
        try:
            out.append(float(score))
        except (TypeError, ValueError):
            raise SearchError(
                f"{who} returned {score!r} for candidate {i}: a score must be a number or None"
            ) from None
    return out


def _refuse_async(reranker: object, call: object) -> None:
    """Refuse a coroutine function (recall awaits nothing)."""
    method = getattr(call, "__call__", None)  # noqa: B004 - an object's async __call__
    if inspect.iscoroutinefunction(call) or (
        not inspect.isfunction(call) and not inspect.ismethod(call) and inspect.iscoroutinefunction(method)
    ):
        raise TypeError(
            f"the reranker {_name(reranker)} is async; recall calls its reranker synchronously: "
            "give a plain (query, texts) -> scores function"
        )


def _check_arity(reranker: object, call: Callable[..., Any], args: tuple[Any, ...], form: str) -> None:
    """Refuse a callable that cannot be called as ``form`` (a wrong signature fails now, not at recall)."""
    try:
        signature = inspect.signature(call)
    except (TypeError, ValueError):  # no signature to read (some builtins): its call will tell
        return
    try:
        signature.bind(*args)
    except TypeError as exc:
        raise TypeError(
            f"the reranker {_name(reranker)} must be callable as {form}, but its signature is "
            f"{signature} ({exc})"
        ) from None


def _name(reranker: object) -> str:
    name = getattr(reranker, "__qualname__", None) or type(reranker).__qualname__
    return repr(name) if isinstance(name, str) else type(reranker).__name__


def _by_position(kept: Sequence[int], n: int) -> list[float | None]:
    """Scores that reproduce the order ``kept`` (positions best first); the rest dropped."""
    scores: list[float | None] = [None] * n
    for rank, position in enumerate(kept):
        scores[position] = float(len(kept) - rank)
    return scores


def _positions(
    source: object,
    returned: Any,
    texts: Sequence[str],
    what: str,
    locate: Callable[[Any], tuple[int | None, str | None, object]],
) -> list[int]:
    """Candidate positions of the items a compressor or postprocessor returned, best first.

    ``locate(item)`` gives the position it carries (None when it carries none), its
    text (None when it is not a document or node at all) and the score it carries (None
    when none). Items whose score is NaN are no opinion: they come after the others, in
    the candidates' order. A framework that sorted by those scores could not order the
    rest either (a sort needs NaN-free keys), so when every other item carries a number
    they are put in its order, best first, ties in the candidates' order.
    """
    who = f"the reranker {_name(source)}"
    if inspect.isawaitable(returned):
        close = getattr(returned, "close", None)
        if callable(close):
            close()
        raise SearchError(f"{who} returned an awaitable: recall calls it synchronously")
    if returned is None or isinstance(returned, (str, bytes, Mapping)) or not isinstance(returned, Iterable):
        raise SearchError(f"{who} must return a list of {what}s, got {type(returned).__name__}")
    by_text: dict[str, list[int]] = {}
    for i, candidate in enumerate(texts):
        by_text.setdefault(candidate, []).append(i)
    taken: set[int] = set()
    order: list[int] = []
    scores: list[object] = []
    no_opinion: list[int] = []
    for item in returned:
        position, text, score = locate(item)
        if text is None:
            raise SearchError(f"{who} returned a {type(item).__name__} where a {what} was expected")
        if position is None or not 0 <= position < len(texts):
            # a new object: its candidate is the first one, not yet returned, with its text
            position = next((i for i in by_text.get(text, ()) if i not in taken), None)
            if position is None:
                raise SearchError(
                    f"{who} returned a {what} that is none of the candidates it was given "
                    f"(text {text[:60]!r}); it may reorder and drop candidates, not make new ones"
                )
        if position in taken:
            if text != texts[position]:
                continue  # another part of a candidate it split: its best part ranks it
            raise SearchError(f"{who} returned candidate {position} ({texts[position][:60]!r}) twice")
        taken.add(position)
        if _is_nan(score):
            no_opinion.append(position)
        else:
            order.append(position)
            scores.append(score)
    numbers = [n for n in map(_number, scores) if n is not None]
    if no_opinion and len(numbers) == len(order):
        by_score = sorted(zip(order, numbers, strict=True), key=lambda pair: (-pair[1], pair[0]))
        order = [position for position, _ in by_score]
    return order + sorted(no_opinion)


def _number(score: object) -> float | None:
    """A score a framework object carries as a float (a numpy scalar too); None when it is none."""
    if score is None or isinstance(score, (bool, str, bytes)):
        return None
    try:
        return float(score)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _is_nan(score: object) -> bool:
    """Whether a score a framework object carries is NaN (a numpy scalar too)."""
    number = _number(score)
    return number is not None and math.isnan(number)


def _compressed(compressor: Any, query: str, texts: Sequence[str]) -> list[int]:
    from langchain_core.documents import Document

    documents = [Document(page_content=t, metadata={_POSITION: i}) for i, t in enumerate(texts)]
    returned = compressor.compress_documents(documents, query)
    given = {id(d): i for i, d in enumerate(documents)}

    def locate(item: Any) -> tuple[int | None, str | None, object]:
        if not isinstance(item, Document):
            return None, None, None
        metadata = item.metadata if isinstance(item.metadata, Mapping) else {}
        score = metadata.get("relevance_score")  # where rerankers such as Cohere's put theirs
        if id(item) in given:
            return given[id(item)], item.page_content, score
        carried = metadata.get(_POSITION)
        position = carried if isinstance(carried, int) and not isinstance(carried, bool) else None
        return position, item.page_content, score

    return _positions(compressor, returned, texts, "Document", locate)


def _postprocessed(postprocessor: Any, query: str, texts: Sequence[str]) -> list[int]:
    from llama_index.core.schema import BaseNode, NodeWithScore, TextNode

    ids = [f"{_POSITION}-{i}" for i in range(len(texts))]
    nodes = [NodeWithScore(node=TextNode(text=t, id_=ids[i]), score=0.0) for i, t in enumerate(texts)]
    returned = postprocessor.postprocess_nodes(nodes, query_str=query)
    position_of = {key: i for i, key in enumerate(ids)}

    def locate(item: Any) -> tuple[int | None, str | None, object]:
        node = item.node if isinstance(item, NodeWithScore) else item
        if not isinstance(node, BaseNode):
            return None, None, None
        score = item.score if isinstance(item, NodeWithScore) else None
        return position_of.get(node.node_id), node.get_content(), score

    return _positions(postprocessor, returned, texts, "NodeWithScore", locate)
