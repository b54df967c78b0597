"""Which store, branch and version a command or page reads: specs, views and references.

A *reference* names one version of a store in a few characters, the same on the
command line and in the inspector's URLs:

| reference      | means                                                  |
|----------------|--------------------------------------------------------|
| ``12``         | version 12 of the current branch                       |
| ``before-trip``| the version a tag names (on whichever branch it is)    |
| ``what-if``    | the latest version of a branch                         |
| ``what-if@9``  | version 9 of a branch (``main@9``, ``what-if@latest``) |

Tag and branch names cannot hold ``@``, so the forms never overlap; a name that is
both a tag and a branch means the tag (write ``name@latest`` for the branch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

import lance

from lance_context import (
    DEFAULT_EMBEDDER,
    ContextStore,
    EncryptionPolicy,
    ReadOnlyError,
    VersionNotFoundError,
)
from lance_context.adapters import read_marker

__all__ = [
    "MAIN",
    "Mode",
    "NoStore",
    "NotFound",
    "StoreSpec",
    "View",
    "as_mode",
    "name_problem",
    "open_view",
    "resolve_ref",
    "search_embedder",
    "store_tags",
    "tag_branch",
]

MAIN = "main"
Mode = Literal["vector", "text", "hybrid"]


def as_mode(mode: str) -> Mode:
    """A search mode given as text, checked.

    Raises:
        ValueError: Not one of ``vector``, ``text``, ``hybrid``.
    """
    if mode not in ("vector", "text", "hybrid"):
        raise ValueError(f"mode must be vector, text or hybrid, not {mode!r}")
    return cast(Mode, mode)


class NotFound(LookupError):
    """A session, record or name that the store does not hold (the message says which)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class NoStore(NotFound):
    """Nothing is stored at the location given."""


@dataclass(frozen=True)
class StoreSpec:
    """Where a store is and how to reach it.

    Attributes:
        uri: A local path or an object-store URI.
        storage_options: Object-store settings (never printed).
        branch: The branch commands read and write by default.
        encryption: The key of an encrypted store (``--key-file``), never printed. It
            is only used where the store is encrypted (or created): a write never
            turns a plaintext store into an encrypted one.
    """

    uri: str
    storage_options: Mapping[str, str] = field(default_factory=dict)
    branch: str = MAIN
    encryption: EncryptionPolicy | None = field(default=None, repr=False, compare=False)

    def on(self, branch: str) -> StoreSpec:
        """The same store (and key) on another branch."""
        return replace(self, branch=branch)

    def encrypted(self) -> bool | None:
        """Whether the store (on this spec's branch) is encrypted; None when nothing is there."""
        try:
            ds = lance.dataset(self.uri, storage_options=dict(self.storage_options) or None)
            if self.branch != MAIN:
                ds = ds.checkout_version((self.branch, None))
        except (OSError, ValueError):
            return None
        return read_marker(ds.schema) is not None

    def open_read(self, branch: str | None = None, *, embedder: Any = None) -> ContextStore:
        """The store opened read-only on ``branch``: nothing it does can write.

        ``embedder=None`` skips loading a model (enough for anything but search);
        pass ``DEFAULT_EMBEDDER`` to search with the store's recorded embedder.
        """
        try:
            return ContextStore.open(
                self.uri,
                storage_options=dict(self.storage_options) or None,
                read_only=True,
                branch=branch or self.branch,
                embedder=embedder,
                encryption=self.encryption,  # read-only: a plaintext store stays as it is
            )
        except ReadOnlyError as exc:
            if str(exc).startswith("no store at "):
                raise NoStore(f"no store at {self.uri}") from None
            raise
        except VersionNotFoundError as exc:
            if not str(exc).startswith("no branch named") or (branch or self.branch) == MAIN:
                raise
            names = ", ".join(self.open_read(MAIN).branches())
            raise VersionNotFoundError(
                f"{exc}; branches: {names} (lance-context branch URI lists them)"
            ) from None

    def open_write(self, *, embedder: Any = None) -> ContextStore:
        """The store opened for writing on the spec's branch (created when missing).

        The key is passed only to an encrypted store or a new one: opened for writing
        with a key, a plaintext store would be marked encrypted, and one given
        ``LANCE_CONTEXT_KEY_FILE`` for other stores must not change it.
        """
        sealing = self.encryption is not None and self.encrypted() is not False
        return ContextStore.open(
            self.uri,
            storage_options=dict(self.storage_options) or None,
            branch=self.branch,
            embedder=embedder,
            encryption=self.encryption if sealing else None,
        )


@dataclass(frozen=True)
class View:
    """One version of one branch, pinned: everything read through it is consistent.

    Attributes:
        spec: The store.
        store: A read-only store pinned at :attr:`version` of :attr:`branch`.
        branch: The branch.
        version: The version.
        latest: Whether it was the branch's latest version when opened.
    """

    spec: StoreSpec
    store: ContextStore
    branch: str
    version: int
    latest: bool

    @property
    def ref(self) -> str:
        """The reference naming this exact version (``main@12``)."""
        return f"{self.branch}@{self.version}"

    def describe(self) -> str:
        """``main@12 (latest)`` or ``main@9``."""
        return self.ref + (" (latest)" if self.latest else "")


def open_view(
    spec: StoreSpec,
    at: int | str | None = None,
    *,
    branch: str | None = None,
    embedder: Any = None,
    store: ContextStore | None = None,
) -> View:
    """A pinned view of ``spec`` at a version number, a tag, or the latest (``None``).

    ``store``: an already open read-only store on ``branch`` to pin (saves opening one).
    """
    name = branch or spec.branch
    store = store or spec.open_read(name, embedder=embedder)
    latest = store.version()
    pinned = store.at_version(latest if at is None else at)
    version = pinned.version()
    return View(spec, pinned, name, version, version == latest)


def store_tags(spec: StoreSpec) -> dict[str, tuple[str, int]]:
    """Every tag of the store, on any branch: name -> (branch, version), in one listing.

    Stands in for ``ContextStore.tags(all_branches=True)``; ``tags()`` lists one branch's.

    Raises:
        NoStore: Nothing is stored at the spec's URI.
    """
    try:
        listed = lance.dataset(spec.uri, storage_options=dict(spec.storage_options) or None).tags.list()
    except (OSError, ValueError):
        spec.open_read()  # says what is wrong in the core's words: no store there, or why not
        raise
    return {
        name: (str(info.get("branch") or MAIN), int(info["version"])) for name, info in sorted(listed.items())
    }


def tag_branch(spec: StoreSpec, name: str) -> str | None:
    """The branch holding tag ``name``, or None when no branch has it."""
    found = store_tags(spec).get(name)
    return None if found is None else found[0]


def resolve_ref(spec: StoreSpec, ref: str | int | None, *, embedder: Any = None) -> View:
    """The view a reference names (see the module docstring); ``None`` is the latest.

    Raises:
        VersionNotFoundError: Nothing of that name, or a version that does not exist.
    """
    if ref is None or ref == "":
        return open_view(spec, embedder=embedder)
    text = str(ref).strip()
    if text.isascii() and text.isdigit():  # "²" is a digit to isdigit(), not to int()
        return open_view(spec, int(text), embedder=embedder)
    if "@" in text:
        branch, _, version = text.partition("@")
        branch = branch or spec.branch
        if version in ("", "latest"):
            return open_view(spec, branch=branch, embedder=embedder)
        if not (version.isascii() and version.isdigit()):
            raise VersionNotFoundError(f"bad reference {text!r}: write BRANCH@VERSION, such as main@12")
        return open_view(spec, int(version), branch=branch, embedder=embedder)
    tags = store_tags(spec)
    holder = tags[text][0] if text in tags else None
    if holder is not None:
        return open_view(spec, text, branch=holder, embedder=embedder)
    main = spec.open_read(MAIN, embedder=embedder)
    if text in main.branches():
        return open_view(spec, branch=text, embedder=embedder)
    raise VersionNotFoundError(
        f"no version, tag or branch named {text!r}; tags: {', '.join(sorted(tags)) or 'none'}; "
        f"branches: {', '.join(main.branches())}"
    )


def search_embedder() -> Any:
    """What a view that searches by vector opens with: the store's recorded embedder."""
    return DEFAULT_EMBEDDER


def name_problem(kind: str, name: str) -> str | None:
    """Why a new tag or branch NAME cannot be used by name here (None: it can).

    Digits alone read as a version number wherever a version or tag is asked for (the
    command line's ``restore URI 12``, the inspector's ``?version=12``), so such a tag
    could never be named there (the core accepts it: ``at_version`` tells ``"12"`` from
    ``12``); a tag ``main`` could not be told from the main branch.
    """
    if name.isascii() and name.isdigit():
        return (
            f"a {kind} name made only of digits would read as version {int(name)}; "
            "choose a name with a letter"
        )
    if kind == "tag" and name == MAIN:
        return (
            f"{MAIN} is the main branch's name: a tag of that name could not be told from it; choose another"
        )
    return None
