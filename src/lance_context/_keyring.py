"""An encrypted store's keys: checked when it opens, rotated as one re-encrypting version.

The store's schema metadata carries a marker (see ``_encryption``): that the store is
encrypted, and the id of its static key when it has one. Opening with another static
key is refused before anything is written; opening without a key leaves the store
readable for its history (versions, tags, sizes) and refuses to read or write sealed
records. A per-tenant key is checked against the key id the session's records carry,
the first time the session is written in a process.
"""

from __future__ import annotations

import functools

import lance
import pyarrow as pa
from lance.fragment import write_fragments

from ._dataset import DatasetHandle
from ._encryption import MARKER_KEY, SEALED_PREFIX, Cipher, EncryptionPolicy, key_id, marker_json, read_marker
from ._errors import CommitConflictError, EncryptionError, WrongKeyError
from ._files import restore_indexes
from ._filters import and_, eq
from ._state import StoreState
from ._versions import OP_KEY

__all__ = ["creation_metadata", "open_cipher", "rotate_key"]


def creation_metadata(policy: EncryptionPolicy | None) -> dict[str, str]:
    """Schema metadata a new store is created with (the marker, when encrypted).

    Raises:
        EncryptionError: ``policy`` is not an ``EncryptionPolicy`` (nothing is created).
    """
    _check_policy(policy)
    return {} if policy is None else {MARKER_KEY: marker_json(policy)}


def _check_policy(policy: object) -> None:
    if policy is not None and not isinstance(policy, EncryptionPolicy):
        raise EncryptionError(
            "encryption= takes an EncryptionPolicy (encryption=EncryptionPolicy(key=...)), "
            f"got {type(policy).__name__}; nothing was written"
        )


def _stored_key_id(handle: DatasetHandle, run_id: str) -> str | None:
    """The key id a session's newest sealed records carry (None: it has none)."""
    ds = handle.latest()
    sql = and_(eq("run_id", run_id), f"starts_with(metadata, '{SEALED_PREFIX}')")
    table = handle.call(
        lambda: ds.to_table(filter=sql, columns=["metadata", "seq"]), "check the session's key", retry=False
    )
    if table.num_rows == 0:
        return None
    newest = table.sort_by([("seq", "descending")]).column("metadata")[0].as_py()
    return str(newest)[len(SEALED_PREFIX) :]


def open_cipher(
    handle: DatasetHandle, schema: pa.Schema, policy: EncryptionPolicy | None, *, read_only: bool
) -> Cipher | None:
    """The cipher a store opens with; marks a plain store encrypted when opened with a key.

    ``schema`` is the one the store opened with (its marker says whether it is encrypted),
    so opening does not look for a newer version again.

    Raises:
        EncryptionError: The static key is not the one the store was encrypted with.
    """
    _check_policy(policy)
    marker = read_marker(schema)
    if policy is None:
        return None if marker is None else Cipher(None)
    recorded = None if marker is None else marker.get("key_id")
    if policy.key is not None and recorded is not None:
        known = {key_id(k) for k in (policy.key, *policy.previous_keys)}
        if recorded not in known:
            raise WrongKeyError(
                f"{handle.display_uri()} is encrypted with key {recorded}, not the key given "
                f"({key_id(policy.key)}); nothing was read or written",
                sealed_with=str(recorded),
                given=key_id(policy.key),
                uri=handle.display_uri(),
            )
    if marker is None and not read_only:
        mark: dict[str, str | None] = {MARKER_KEY: marker_json(policy)}
        handle.write(lambda ds: ds.update_schema_metadata(mark), "mark the store encrypted")
    static = policy.key is not None and recorded == key_id(policy.key)
    return Cipher(policy, None if static else functools.partial(_stored_key_id, handle))


def rotate_key(state: StoreState, policy: EncryptionPolicy, attempts: int = 3) -> int:
    """Seal every record of the latest version with ``policy``, as one new version.

    Older versions keep the records sealed with the old key (or in plaintext): read them
    with a policy that lists the old key in ``previous_keys``. A record written by
    another writer meanwhile makes the commit conflict; it is retried from a fresh read.

    Returns:
        The version holding the re-encrypted records.
    """
    if not isinstance(policy, EncryptionPolicy):
        raise EncryptionError(
            f"rotate_key() takes an EncryptionPolicy (EncryptionPolicy(key=...)), got {type(policy).__name__}"
        )
    state.check_writable()
    old = state.cipher
    rotating = Cipher(policy)  # seals without checking sessions against their old keys
    handle = state.handle
    for _ in range(attempts):
        base = handle.latest()
        table = handle.call(base.to_table, "read the records to re-encrypt", retry=False)
        plain = old.open(table) if old is not None else table
        sealed = rotating.seal(plain)
        metadata = dict(sealed.schema.metadata or {})
        metadata[MARKER_KEY.encode()] = marker_json(policy).encode()
        sealed = sealed.replace_schema_metadata(metadata)
        had = {index.name for index in base.describe_indices()}

        def commit(base: lance.LanceDataset = base, sealed: pa.Table = sealed) -> int:
            fragments = write_fragments(sealed, base, schema=sealed.schema, mode="overwrite")
            operation = lance.LanceOperation.Overwrite(sealed.schema, fragments)
            return int(handle.commit(base, operation, {OP_KEY: "rotate-key"}, max_retries=0).version)

        try:
            version = handle.call(commit, "write the re-encrypted records", retry=False)
        except CommitConflictError:
            continue
        lookup = None if policy.key is not None else functools.partial(_stored_key_id, handle)
        # the old keys stay known, so this process still reads the versions they sealed
        state.cipher = (old or Cipher(None)).with_policy(policy, lookup)
        restore_indexes(state, had)
        return version
    raise CommitConflictError(
        f"the store changed during each of {attempts} key rotation attempts; nothing was written: "
        "run rotate_key() again when fewer writers are active"
    )
