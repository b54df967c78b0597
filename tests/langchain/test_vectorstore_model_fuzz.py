"""LanceVectorStore driven by seeded random call sequences next to LangChain's ``InMemoryVectorStore``.

Each step runs one random call (writes, deletes, reads, every search method, the
retriever's search types, sync or async) on ours and on the reference, then compares
what a user sees, and after every step the whole collection. Normalisations, each
needed because the two stores legitimately differ there:

* Ids made up by a store (no id given) are random on both sides: ours are mapped to
  the reference's by position in the returned id list before comparing documents.
* Vectors are float32 in ours and float64 in the reference: scores agree within
  ``TOLERANCE``.
* Two documents with the same text have the same vector, so their order among equal
  scores is arbitrary: a search is compared as the sequence of (text, score), and
  each returned document must be, id, text and metadata, one the reference holds.
* ``InMemoryVectorStore`` has no relevance function (its ``_select_relevance_score_fn``
  raises): the reference here uses ours, the cosine similarity clipped to [0, 1].
* Filters: the reference takes a callable, ours a metadata dict; each pair of
  ``FILTERS`` states the same condition both ways.
* ``delete()`` without ids empties the collection in ours, as LangChain's
  ``VectorStore.delete`` documents ("If None, delete all"); ``InMemoryVectorStore``
  ignores the call, so the model empties the reference by hand. ``delete`` returns
  True in ours (the base class's "True if deletion is successful") and None in the
  reference: not compared.
* MMR ties (a query equal to a document's text, ``lambda_mult=0`` with repeated
  texts) are arbitrary: see ``Fuzz.query`` and ``Fuzz.same_mmr``.
* Known difference, not drawn here: a document whose vector is all zeros is never a
  vector hit here (see the last test).
* Error cases (wrong lengths, bad arguments) are not drawn: both raise ``ValueError``,
  with other messages.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_core.vectorstores.utils import _cosine_similarity as cosine_similarity

from lance_context.langchain import LanceVectorStore

EMBEDDING = DeterministicFakeEmbedding(size=16)
TOLERANCE = 1e-4
#: Ids beyond the plain ones: separators, quotes, LIKE wildcards, unicode, a long one.
ODD_IDS = ["a/b", "it's", 'say "hi"', "100%", "_", "ü id ✓", "back\\slash", "x" * 300, " ", "."]
WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"]


class _Reference(InMemoryVectorStore):
    """``InMemoryVectorStore`` with our relevance function (it has none of its own)."""

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return lambda similarity: min(1.0, max(0.0, similarity))


def _tag_is(value: str) -> Callable[[Document], bool]:
    return lambda d: d.metadata.get("tag") == value


def _n_at_least(low: int) -> Callable[[Document], bool]:
    return lambda d: isinstance(d.metadata.get("n"), int) and d.metadata["n"] >= low


def _nested_is(value: str) -> Callable[[Document], bool]:
    return lambda d: isinstance(d.metadata.get("nest"), dict) and d.metadata["nest"].get("k") == value


def _list_has(value: str) -> Callable[[Document], bool]:
    return lambda d: isinstance(d.metadata.get("lst"), list) and value in d.metadata["lst"]


#: (our dict filter, the reference's callable) stating the same condition.
FILTERS: list[tuple[dict[Any, Any], Callable[[Document], bool]]] = [
    ({"tag": "a"}, _tag_is("a")),
    ({"tag": {"$in": ["b", "c"]}}, lambda d: d.metadata.get("tag") in ("b", "c")),
    ({"n": {"$gte": 3}}, _n_at_least(3)),
    ({("nest", "k"): "x"}, _nested_is("x")),
    ({"lst": {"$contains": "p"}}, _list_has("p")),
    ({"flag": True}, lambda d: d.metadata.get("flag") is True),
    ({"$or": [{"tag": "b"}, {"n": 0}]}, lambda d: d.metadata.get("tag") == "b" or d.metadata.get("n") == 0),
    ({"$not": {"tag": "a"}}, lambda d: not _tag_is("a")(d)),
    ({"tag": "a", ("nest", "k"): "y"}, lambda d: _tag_is("a")(d) and _nested_is("y")(d)),
]


async def _call(target: Any, aio: bool, name: str, *args: Any, **kwargs: Any) -> Any:
    """``target.name(...)``, or its async twin ``target.aname(...)`` awaited."""
    if aio:
        return await getattr(target, f"a{name}")(*args, **kwargs)
    return getattr(target, name)(*args, **kwargs)


class Fuzz:
    """One seeded run: the two stores, the id mapping, and the random choices."""

    def __init__(self, seed: int, path: Path) -> None:
        self.rng = random.Random(seed)
        self.ref = _Reference(EMBEDDING)
        self.ours = LanceVectorStore(EMBEDDING, uri=str(path / f"vs{seed}.lance"), collection="fuzz")
        self.alias: dict[str, str] = {}  # our made-up id -> the reference's
        self.serial = 0

    # ------------------------------------------------------------------ random inputs
    def text(self) -> str:
        if self.rng.random() < 0.08:
            return self.rng.choice(["", "", " ", "line\nbreak \u00e9\U0001f600", "x" * 3000])
        if self.rng.random() < 0.15 and self.ref.store:  # a text some document has already
            return str(self.rng.choice(list(self.ref.store.values()))["text"])
        self.serial += 1
        return f"{self.rng.choice(WORDS)} {self.rng.choice(WORDS)} {self.serial}"

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        rng = self.rng
        if rng.random() < 0.7:
            meta["tag"] = rng.choice("abc")
        if rng.random() < 0.6:
            meta["n"] = rng.randrange(6)
        if rng.random() < 0.4:
            meta["nest"] = {"k": rng.choice("xy"), "deep": {"v": [1, 2.5, None]}}
        if rng.random() < 0.4:
            meta["lst"] = rng.sample(["p", "q", "r"], rng.randrange(4))
        if rng.random() < 0.3:
            meta["flag"] = rng.random() < 0.5
        if rng.random() < 0.1:
            meta["note"] = "ünï \"quoted\" 'single'"
        if rng.random() < 0.1:
            meta["odd"] = rng.choice([None, {}, [], 2**62, -0.5, 1e-300, "", [{"a": [None]}], "x\ny"])
        if rng.random() < 0.05:
            meta["ключ ✓"] = "值"
        return meta

    def known_id(self) -> str:
        """An id of the reference's side: live, deleted earlier, or never used."""
        live = list(self.ref.store)
        if live and self.rng.random() < 0.7:
            return self.rng.choice(live)
        return self.plain_id()

    def plain_id(self) -> str:
        return self.rng.choice(ODD_IDS) if self.rng.random() < 0.15 else f"id{self.rng.randrange(12)}"

    def given_id(self) -> str | None:
        roll = self.rng.random()
        if roll < 0.25:
            return None
        if roll < 0.3:
            return ""
        return self.plain_id() if roll < 0.8 else self.known_id()

    def ours_id(self, ref_id: str) -> str:
        back = {v: k for k, v in self.alias.items()}
        return back.get(ref_id, ref_id)

    def ref_id(self, our_id: str | None) -> str | None:
        return self.alias.get(our_id, our_id) if our_id is not None else None

    def filter_pair(self) -> tuple[dict[Any, Any] | None, Callable[[Document], bool] | None]:
        if self.rng.random() < 0.5:
            return None, None
        return self.rng.choice(FILTERS)

    def query(self, stored: bool = True) -> str:
        """A query text: a stored document's text (``stored``) or a text no document has.

        MMR is asked only the latter: a query equal to a document's text makes, at
        ``lambda_mult=0.5``, every later candidate's MMR score exactly 0 after that
        document is picked, and the pick among the tie is float noise.
        """
        if stored and self.ref.store and self.rng.random() < 0.4:
            return str(self.rng.choice(list(self.ref.store.values()))["text"])
        return f"{self.rng.choice(WORDS)} query"

    def k(self) -> int:
        """How many to ask for: often fewer than the store holds, sometimes more."""
        return self.rng.choice([1, 2, 3, 5, 8, 13, 60])

    # ------------------------------------------------------------------ comparisons
    def same_ids(self, ours: list[str], ref: list[str], made_up: list[bool]) -> None:
        assert len(ours) == len(ref)
        for mine, theirs, new in zip(ours, ref, made_up, strict=True):
            if new:
                assert mine and mine not in self.alias
                self.alias[mine] = theirs
            else:
                assert self.ref_id(mine) == theirs

    def as_ref(self, doc: Document) -> Document:
        return Document(id=self.ref_id(doc.id), page_content=doc.page_content, metadata=doc.metadata)

    def same_docs(self, ours: list[Document], ref: list[Document]) -> None:
        assert [self.as_ref(d) for d in ours] == ref

    def same_ranking(self, ours: list[tuple[Document, float]], ref: list[tuple[Document, float]]) -> None:
        """Same texts and scores in order; every document one the reference holds; no repeats."""
        assert [d.page_content for d, _ in ours] == [d.page_content for d, _ in ref]
        assert [s for _, s in ours] == pytest.approx([s for _, s in ref], abs=TOLERANCE)
        ids = [self.ref_id(d.id) for d, _ in ours]
        assert len(set(ids)) == len(ids)
        for doc, _ in ours:
            held = self.ref.store[self.ref_id(doc.id)]  # type: ignore[index]
            assert (doc.page_content, doc.metadata) == (held["text"], held["metadata"])

    def same_unscored(self, ours: list[Document], ref: list[Document]) -> None:
        self.same_ranking([(d, 0.0) for d in ours], [(d, 0.0) for d in ref])

    def same_mmr(self, ours: list[Document], ref: list[Document], query: str, mmr: dict[str, Any]) -> None:
        """MMR picks compared up to the reference's first near-tie, then only their count.

        With ``lambda_mult=0`` a candidate whose text (so vector) was picked already
        scores exactly -1, as does any other such one: which comes first is arbitrary,
        and float32 against float64 decides it. The reference's own selection loop is
        re-run here to find the first pick whose best and second-best scores are close.
        """
        k, fetch_k, lambda_mult = mmr["k"], mmr.get("fetch_k", 20), mmr.get("lambda_mult", 0.5)
        hits = self.ref._similarity_search_with_score_by_vector(
            EMBEDDING.embed_query(query), k=fetch_k, filter=mmr.get("filter")
        )
        vectors = np.array([vector for _, _, vector in hits])
        to_query = np.array([score for _, score, _ in hits])
        chosen: list[int] = []
        while len(chosen) < min(k, len(hits)):
            redundancy = cosine_similarity(vectors, vectors[chosen]).max(axis=1) if chosen else 0.0
            scores = lambda_mult * to_query - (1 - lambda_mult) * redundancy if chosen else to_query.copy()
            scores[chosen] = -np.inf
            best, second = np.sort(scores)[::-1][:2] if len(hits) - len(chosen) > 1 else (0.0, -np.inf)
            if best - second < TOLERANCE:
                break
            chosen.append(int(np.argmax(scores)))
        assert len(ours) == len(ref)
        self.same_unscored(ours[: len(chosen)], ref[: len(chosen)])
        self.same_unscored(ours, ours)  # the rest: held documents, no repeats

    def same_collection(self) -> None:
        everything = self.ours.similarity_search("x", k=1000)
        assert sorted(str(self.ref_id(d.id)) for d in everything) == sorted(self.ref.store)
        asked = [self.ours_id(i) for i in self.ref.store]
        self.same_docs(self.ours.get_by_ids(asked), self.ref.get_by_ids(list(self.ref.store)))

    # ------------------------------------------------------------------ steps
    async def step(self) -> str:
        rng = self.rng
        aio = rng.random() < 0.3
        kinds = [
            "add_texts",
            "add_documents",
            "delete",
            "get",
            "search",
            "vector",
            "relevance",
            "mmr",
            "retriever",
        ]
        kind = rng.choices(kinds, weights=[4, 4, 2, 2, 3, 1, 2, 2, 2])[0]
        await getattr(self, f"_{kind}")(aio)
        return f"{'a' if aio else ''}{kind}"

    async def _add_texts(self, aio: bool) -> None:
        texts = [self.text() for _ in range(self.rng.randrange(0, 5))]
        metas = [self.metadata() for _ in texts] if self.rng.random() < 0.7 else None
        ids = [self.given_id() for _ in texts] if self.rng.random() < 0.7 else None
        our_ids = [self.ours_id(i) if i else i for i in ids] if ids is not None else None
        got = await _call(self.ours, aio, "add_texts", texts, metas, ids=our_ids)
        want = await _call(self.ref, aio, "add_texts", texts, metas, ids=ids)
        self.same_ids(got, want, [not (ids and ids[n]) for n in range(len(texts))])

    async def _add_documents(self, aio: bool) -> None:
        own = [self.given_id() if self.rng.random() < 0.6 else None for _ in range(self.rng.randrange(0, 5))]
        docs = [Document(page_content=self.text(), metadata=self.metadata(), id=i) for i in own]
        ids = [self.given_id() for _ in docs] if self.rng.random() < 0.4 else None
        ours_docs = [d.model_copy(update={"id": self.ours_id(d.id) if d.id else d.id}) for d in docs]
        our_ids = [self.ours_id(i) if i else i for i in ids] if ids is not None else None
        got = await _call(self.ours, aio, "add_documents", ours_docs, ids=our_ids)
        want = await _call(self.ref, aio, "add_documents", docs, ids=ids)
        chosen = ids or own
        self.same_ids(got, want, [not chosen[n] for n in range(len(docs))])

    async def _delete(self, aio: bool) -> None:
        if self.rng.random() < 0.05:
            await _call(self.ours, aio, "delete")
            self.ref.store.clear()  # the reference ignores delete() with no ids (module docstring)
            return
        ids = [self.known_id() for _ in range(self.rng.randrange(0, 4))]
        ids += ids[:1] if self.rng.random() < 0.3 else []
        await _call(self.ours, aio, "delete", [self.ours_id(i) for i in ids])
        await _call(self.ref, aio, "delete", ids)

    async def _get(self, aio: bool) -> None:
        ids = [self.known_id() for _ in range(self.rng.randrange(0, 6))]
        ids += ids[:2] if self.rng.random() < 0.4 else []
        got = await _call(self.ours, aio, "get_by_ids", [self.ours_id(i) for i in ids])
        self.same_docs(got, await _call(self.ref, aio, "get_by_ids", ids))

    async def _search(self, aio: bool, by_vector: bool = False) -> None:
        query, k = self.query(), self.k()
        if by_vector:
            query = EMBEDDING.embed_query(query)  # type: ignore[assignment]
        mine, theirs = self.filter_pair()
        scored = self.rng.random() < 0.5
        name = "similarity_search" + ("_with_score" if scored else "") + ("_by_vector" if by_vector else "")
        got = await _call(self.ours, aio, name, query, k, filter=mine)
        ref_aio = aio and hasattr(self.ref, f"a{name}")  # LangChain has no async scored by-vector search
        want = await _call(self.ref, ref_aio, name, query, k, filter=theirs)
        self.same_ranking(got, want) if scored else self.same_unscored(got, want)

    async def _vector(self, aio: bool) -> None:
        await self._search(aio, by_vector=True)

    async def _relevance(self, aio: bool) -> None:
        query, k = self.query(), self.k()
        mine, theirs = self.filter_pair()
        extra: dict[str, Any] = {}
        if self.rng.random() < 0.6:
            extra["score_threshold"] = self.rng.choice([0.0, 0.2, 0.5, 0.8])
        name = "similarity_search_with_relevance_scores"
        got = await _call(self.ours, aio, name, query, k, **extra, **({"filter": mine} if mine else {}))
        want = await _call(self.ref, aio, name, query, k, **extra, **({"filter": theirs} if theirs else {}))
        self.same_ranking(got, want)

    async def _mmr(self, aio: bool) -> None:
        query, k = self.query(stored=False), self.k()
        fetch_k = self.rng.choice([1, 2, 5, 10, 20])
        lambda_mult = self.rng.choice([0.0, 0.3, 0.5, 0.8, 1.0])
        mine, theirs = self.filter_pair()
        name, asked = "max_marginal_relevance_search", query
        if self.rng.random() < 0.3:
            name, asked = name + "_by_vector", EMBEDDING.embed_query(query)  # type: ignore[assignment]
        got = await _call(self.ours, aio, name, asked, k, fetch_k, lambda_mult, filter=mine)
        want = await _call(self.ref, aio, name, asked, k, fetch_k, lambda_mult, filter=theirs)
        self.same_mmr(
            got, want, query, {"k": k, "fetch_k": fetch_k, "lambda_mult": lambda_mult, "filter": theirs}
        )

    async def _retriever(self, aio: bool) -> None:
        search_type = self.rng.choice(["similarity", "mmr", "similarity_score_threshold"])
        kwargs: dict[str, Any] = {"k": self.k()}
        if search_type == "mmr":
            kwargs |= {
                "fetch_k": self.rng.choice([2, 5, 20]),
                "lambda_mult": self.rng.choice([0.2, 0.5, 0.9]),
            }
        if search_type == "similarity_score_threshold":
            kwargs["score_threshold"] = self.rng.choice([0.0, 0.3, 0.6])
        mine, theirs = self.filter_pair()
        ours = self.ours.as_retriever(search_type=search_type, search_kwargs=kwargs | {"filter": mine})
        ref = self.ref.as_retriever(search_type=search_type, search_kwargs=kwargs | {"filter": theirs})
        query = self.query(stored=search_type != "mmr")
        # invoke(query, k=...) overrides the retriever's k
        per_call: dict[str, Any] = {"k": self.k()} if self.rng.random() < 0.3 else {}
        got = await _call(ours, aio, "invoke", query, None, **per_call)
        want = await _call(ref, aio, "invoke", query, None, **per_call)
        compare = self.same_unscored
        if search_type == "mmr":
            compare = partial(self.same_mmr, query=query, mmr=kwargs | per_call | {"filter": theirs})
        compare(got, want)
        if self.rng.random() < 0.5:  # the store's own search(query, search_type, ...)
            kwargs |= per_call
            got = await _call(self.ours, aio, "search", query, search_type, filter=mine, **kwargs)
            compare(got, await _call(self.ref, aio, "search", query, search_type, filter=theirs, **kwargs))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_random_call_sequences_match_the_reference(tmp_path: Path, seed: int) -> None:
    fuzz = Fuzz(seed, tmp_path)
    done: list[str] = []
    for _ in range(100):
        try:
            done.append(await fuzz.step())
            fuzz.same_collection()
        except AssertionError as exc:  # names the steps that led here
            raise AssertionError(f"seed {seed}, after {done} and one more") from exc
    assert len(set(done)) >= 14  # not degenerate: most step kinds ran, sync and async


class _ZeroForSome(Embeddings):
    """Fake embeddings giving the all-zero vector to texts starting with ``zero``."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return [0.0] * 16 if text.startswith("zero") else EMBEDDING.embed_query(text)


def test_a_document_with_an_all_zero_vector_is_kept_but_never_a_vector_hit(tmp_path: Path) -> None:
    # The one deliberate difference: InMemoryVectorStore ranks an all-zero vector at cosine
    # 0.0; it has no direction, so the store leaves it out of vector search, as Lance does
    # (README, "Vector search ranks by cosine similarity"). The other hits match the reference.
    texts = ["alpha", "beta", "zero vector", "gamma"]
    ref = InMemoryVectorStore(_ZeroForSome())
    ours = LanceVectorStore(_ZeroForSome(), uri=str(tmp_path / "zero.lance"))
    for vs in (ref, ours):
        vs.add_texts(texts, ids=texts)
    want = [(d.id, round(s, 4)) for d, s in ref.similarity_search_with_score("query", k=10)]
    got = [(d.id, round(s, 4)) for d, s in ours.similarity_search_with_score("query", k=10)]
    assert got == [hit for hit in want if hit[0] != "zero vector"] and len(want) == 4
    assert [d.page_content for d in ours.get_by_ids(["zero vector"])] == ["zero vector"]
