"""Encryption at rest: payloads sealed with AES-GCM before they reach Lance, opened on read.

A store opened with ``encryption=EncryptionPolicy(...)`` seals each record, when its
Arrow row is built (:func:`seal_table`, the one seam in ``_arrow.records_to_table``),
into one AES-GCM ciphertext holding its text payload, binary payload, metadata JSON
(keys and values, byte for byte), custom agent state and the text its indexes would hold
(``search_text``, ``embed_text``). The row Lance stores then holds:

| column                 | holds                                                           |
|------------------------|-----------------------------------------------------------------|
| text_payload           | null                                                            |
| search_text, embed_text| null (the index text of schema 2 is sealed with the payloads)   |
| binary_payload         | 12-byte nonce + ciphertext + 16-byte tag                        |
| metadata               | ``lce1:<key id>``: which key sealed the row                     |
| metadata_index         | the metadata keys, values null unless listed in ``clear_metadata`` |
| state_metadata.custom  | null (step, plan id and tokens stay)                            |

Everything else stays readable to whoever can read the files: ids, run ids, roles,
content types, times, ``seq``, relationships, vectors, metadata keys, and sizes (a sealed
payload is 28 bytes longer than its plaintext plus a few length bytes). The additional
data of each ciphertext is the record's id and run id, so a sealed payload copied onto
another record does not open. A key id is the first 16 hex digits of
``HMAC-SHA256(key, "lance-context key id")``: it names a key without revealing it.

Filters and full-text search need plaintext, so on an encrypted store a filter on text
or on a sealed metadata value, and ``mode="text"``/``"hybrid"`` search, are refused
(``_sealed.check_query``); ``$exists`` works on any metadata key, and vectors stay searchable.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ._encryption_policy import (
    MARKER_KEY,
    EncryptionPolicy,
    check_key,
    key_id,
    marker_json,
    read_marker,
)
from ._errors import EncryptionError, InvalidRecordError, KeyMissingError, WrongKeyError
from ._packing import pack as _pack
from ._packing import unpack as _unpack
from ._schema import STATE_METADATA_TYPE

__all__ = [
    "MARKER_KEY",
    "SEALED_PREFIX",
    "Cipher",
    "EncryptionPolicy",
    "key_id",
    "marker_json",
    "open_table",
    "read_marker",
    "seal_table",
]

#: What the ``metadata`` column of a sealed row starts with (plain rows hold JSON objects).
SEALED_PREFIX = "lce1:"
_NONCE = 12
_AAD = b"lance-context/1\x00"

_MISSING_WRITE = (
    "this store is encrypted and was opened without its key, so nothing is written; "
    "open it with encryption=EncryptionPolicy(key=...) (or key_provider=...)"
)
_MISSING_READ = (
    "this record is encrypted and the store was opened without its key; open the store "
    "with encryption=EncryptionPolicy(key=...) (or key_provider=...) to read it"
)


def _aesgcm() -> Any:
    """The AES-GCM class of the ``cryptography`` package (an optional dependency)."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:
        raise EncryptionError(
            "encryption needs the cryptography package: pip install 'lance-context[encryption]'"
        ) from exc
    return AESGCM


def _aad(record_id: str, run_id: str) -> bytes:
    return _AAD + record_id.encode() + b"\x00" + run_id.encode()


class Cipher:
    """How one open store seals and opens records.

    ``policy=None`` is an encrypted store opened without its key: it refuses to seal and
    to open sealed rows, and still guards filters. ``stored_key_id`` looks up the key
    id a session's records are sealed with, so a per-tenant key that does not match is
    refused before anything is written (checked once per session and process).
    """

    def __init__(
        self, policy: EncryptionPolicy | None, stored_key_id: Callable[[str], str | None] | None = None
    ) -> None:
        """Seal with ``policy``'s keys."""
        self.policy = policy
        self._aesgcm: Any = None  # the AESGCM class, imported only when there are keys
        self._stored = stored_key_id
        self._checked: dict[str, str] = {}
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()
        if policy is not None:
            aead = self._aesgcm = _aesgcm()
            for key in (policy.key, *policy.previous_keys):
                if key is not None:
                    self._keys[key_id(key)] = aead(key)

    def __repr__(self) -> str:
        return f"Cipher(keys={len(self._keys)}, locked={self.policy is None})"

    @property
    def clear_metadata(self) -> frozenset[str]:
        """Metadata keys whose values stay in plaintext."""
        return frozenset() if self.policy is None else self.policy.clear_metadata

    def with_policy(
        self, policy: EncryptionPolicy, stored_key_id: Callable[[str], str | None] | None = None
    ) -> Cipher:
        """A cipher sealing with ``policy`` that still opens what this one opens."""
        new = Cipher(policy, stored_key_id)
        for kid, aead in self._keys.items():
            new._keys.setdefault(kid, aead)
        return new

    def check_current(self, schema: pa.Schema) -> None:
        """Refuse to seal with a static key the store's marker (in ``schema``) no longer names.

        Another handle's ``rotate_key()`` changes the marker; records this handle sealed
        with the old key afterwards would not open for readers given only the new key.
        """
        policy, marker = self.policy, read_marker(schema)
        if policy is None or policy.key is None or self._stored is not None or marker is None:
            return
        if marker.get("key_id") != key_id(policy.key):
            raise WrongKeyError(
                f"the store's key was changed (rotate_key()) since it was opened with key "
                f"{key_id(policy.key)}; nothing was written: open it again with its current key",
                sealed_with=str(marker.get("key_id")),
                given=key_id(policy.key),
            )

    def _key_for(self, run_id: str) -> tuple[str, Any]:
        policy = self.policy
        if policy is None:
            raise KeyMissingError(_MISSING_WRITE, writing=True)
        key = policy.key
        if key is None:
            assert policy.key_provider is not None
            try:
                key = policy.key_provider(run_id)
            except Exception as exc:
                raise EncryptionError(
                    f"the key provider failed for session {run_id!r} ({type(exc).__name__}); "
                    "nothing was written"
                ) from None
            check_key(key, f"the key provider's key for session {run_id!r}")
        kid = key_id(key)
        with self._lock:
            aead = self._keys.setdefault(kid, self._aesgcm(key))
            checked = self._checked.get(run_id) == kid
        if not checked and self._stored is not None:
            stored = self._stored(run_id)
            if stored is not None and stored != kid:
                raise WrongKeyError(
                    f"session {run_id!r} is sealed with key {stored} but the key given for it is {kid}; "
                    "nothing was written (give the session's key, or rotate_key() to change it)",
                    sealed_with=stored,
                    given=kid,
                    run_id=run_id,
                )
        with self._lock:
            self._checked[run_id] = kid
        return kid, aead

    def _opener(self, kid: str, run_id: str, record_id: str) -> Any:
        aead = self._keys.get(kid)
        provider = None if self.policy is None else self.policy.key_provider
        if aead is None and provider is not None:
            try:
                key = provider(run_id)
            except Exception:
                key = None
            if isinstance(key, bytes) and len(key) in (16, 24, 32) and key_id(key) == kid:
                aead = self._aesgcm(key)
                with self._lock:
                    self._keys[kid] = aead
        if aead is None:
            raise WrongKeyError(
                f"record {record_id!r} of session {run_id!r} is sealed with key {kid}, which this store "
                "was not given; open it with that key (or list it in previous_keys)",
                sealed_with=kid,
                run_id=run_id,
                record_id=record_id,
            )
        return aead

    def seal(self, table: pa.Table) -> pa.Table:
        """Seal every row's payloads (see the module docstring for the stored form)."""
        cols = _columns(table)
        sealed, markers, index, states = [], [], [], []
        for i, (record_id, run_id) in enumerate(zip(cols["id"], cols["run_id"], strict=True)):
            if "\x00" in record_id:  # the binding would be ambiguous: ("r\0s", "t") and ("r", "s\0t")
                raise InvalidRecordError(
                    f"record id {record_id!r} holds a NUL character, which an encrypted store's "
                    "records cannot: the id binds each sealed payload to its record and session"
                )
            kid, aead = self._key_for(run_id)
            state = cols["state_metadata"][i]
            plain = _pack(cols["text_payload"][i], cols["binary_payload"][i], cols["metadata"][i],
                          None if state is None else state["custom"],
                          *(cols[name][i] for name in _INDEX_TEXT))  # fmt: skip
            nonce = os.urandom(_NONCE)
            sealed.append(nonce + aead.encrypt(nonce, plain, _aad(record_id, run_id)))
            markers.append(SEALED_PREFIX + kid)
            index.append(self._index(cols["metadata"][i]))
            states.append(None if state is None else {**state, "custom": None})
        nothing = pa.nulls(table.num_rows, pa.large_string())
        return _with_columns(
            table,
            text_payload=nothing,
            search_text=nothing,
            embed_text=nothing,
            binary_payload=pa.array(sealed, pa.large_binary()),
            metadata=pa.array(markers, pa.large_string()),
            metadata_index=pa.array(index, pa.json_()),
            state_metadata=pa.array(states, STATE_METADATA_TYPE),
        )

    def _index(self, metadata_json: str) -> str:
        """The filterable copy of sealed metadata: every key, only clear keys' values."""
        clear = self.clear_metadata
        data = json.loads(metadata_json)
        return json.dumps({k: (v if k in clear else None) for k, v in data.items()}, ensure_ascii=False)

    def open(self, table: pa.Table) -> pa.Table:
        """The rows of ``table`` with sealed payloads opened (plain rows are left as they are)."""
        sealed = _sealed_rows(table)
        if not sealed:
            return table
        if self.policy is None:
            raise KeyMissingError(_MISSING_READ)
        cols = _columns(table)
        for i in sealed:
            record_id, run_id, blob = cols["id"][i], cols["run_id"][i], cols["binary_payload"][i]
            aead = self._opener(cols["metadata"][i][len(SEALED_PREFIX) :], run_id, record_id)
            try:
                plain = aead.decrypt(blob[:_NONCE], blob[_NONCE:], _aad(record_id, run_id))
                text, binary, metadata, custom, *hints = _unpack(plain)
            except Exception:
                raise EncryptionError(
                    f"record {record_id!r} of session {run_id!r} does not open: it was altered, or "
                    "sealed with another key under the same key id"
                ) from None
            cols["text_payload"][i] = None if text is None else text.decode()
            for name, hint in zip(_INDEX_TEXT, hints, strict=False):
                cols[name][i] = None if hint is None else hint.decode()
            cols["binary_payload"][i] = binary
            cols["metadata"][i] = (metadata or b"{}").decode()
            state = cols["state_metadata"][i]
            if state is not None:
                cols["state_metadata"][i] = {**state, "custom": None if custom is None else custom.decode()}
        return _with_columns(
            table,
            text_payload=pa.array(cols["text_payload"], pa.large_string()),
            search_text=pa.array(cols["search_text"], pa.large_string()),
            embed_text=pa.array(cols["embed_text"], pa.large_string()),
            binary_payload=pa.array(cols["binary_payload"], pa.large_binary()),
            metadata=pa.array(cols["metadata"], pa.large_string()),
            state_metadata=pa.array(cols["state_metadata"], STATE_METADATA_TYPE),
        )


#: Text written beside the message for its indexes (schema 2): plaintext, so sealed too.
_INDEX_TEXT = ("search_text", "embed_text")


def _columns(table: pa.Table) -> dict[str, list[Any]]:
    """The columns sealing reads and rewrites, as lists (index text: None when absent)."""
    names = ("id", "run_id", "text_payload", "binary_payload", "metadata", "state_metadata", *_INDEX_TEXT)
    return {
        name: table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows
        for name in names
    }


def _sealed_rows(table: pa.Table) -> list[int]:
    if "metadata" not in table.column_names or table.num_rows == 0:
        return []
    mask = pc.starts_with(table.column("metadata"), SEALED_PREFIX)
    if not pc.any(mask).as_py():
        return []
    return [i for i, flag in enumerate(mask.to_pylist()) if flag]


def _with_columns(table: pa.Table, **columns: pa.Array) -> pa.Table:
    for name, values in columns.items():
        if name in table.column_names:
            wanted = table.schema.field(name)
            column = values if values.type == wanted.type else values.cast(wanted.type)
            table = table.set_column(table.schema.get_field_index(name), wanted, column)
    return table


def seal_table(table: pa.Table, schema: pa.Schema, cipher: Cipher | None) -> pa.Table:
    """The seam where records become rows: seal them, or refuse plain rows on an encrypted store."""
    if cipher is not None:
        cipher.check_current(schema)
        return cipher.seal(table)
    if read_marker(schema) is not None:
        raise KeyMissingError(_MISSING_WRITE, writing=True)
    return table


def open_table(table: pa.Table, cipher: Cipher | None) -> pa.Table:
    """The seam where rows become records: open sealed rows (refused without a key)."""
    if cipher is not None:
        return cipher.open(table)
    if _sealed_rows(table):
        raise KeyMissingError(_MISSING_READ)
    return table
