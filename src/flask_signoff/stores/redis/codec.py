"""Records to Redis hashes and back.

A record is one hash with one field per attribute of its dataclass, named as
the attribute (:data:`~flask_signoff.core.records.SESSION_FIELDS`,
:data:`~flask_signoff.core.records.FAMILY_FIELDS`,
:data:`~flask_signoff.core.records.REFRESH_FIELDS`), but for the attribute
the key is named after (a session's ``key``, a family's ``family_id``),
which would only repeat the key's name. A field added to a record reaches
the hashes with no change here.

Values are strings: ``None`` is an absent field; a ``float`` is written with
:func:`repr`, which round-trips exactly; a ``bool`` is ``"1"`` or ``"0"``.
An absent field reads as the attribute's default (records written before
that attribute existed), or ``None`` where it may be ``None``.

Hashes rather than JSON strings because the scripts change single fields
(``last_seen_at``, ``spent_at``) in place, and because Redis's Lua JSON
encoder prints numbers with 14 significant digits and would round the times.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from ...core.records import (
    FAMILY_FIELDS,
    REFRESH_FIELDS,
    SESSION_FIELDS,
    FamilyRecord,
    RefreshRecord,
    SessionRecord,
)

R = TypeVar("R")

#: The fields of a session that :meth:`Store.update_session` writes; the
#: others are set once, when the session is created.
SESSION_UPDATE_FIELDS = (
    "data",
    "last_seen_at",
    "drop_at",
    "expires_at",
    "fresh_until",
    "remember",
)


def number(value: float) -> str:
    """A time as a hash field or a script argument: exact, as :func:`repr`."""
    return repr(float(value))


def expiry_ms(value: float) -> str:
    """Unix seconds -> the ``PEXPIREAT`` argument, never before ``value``."""
    return str(math.ceil(value * 1000))


def _flag(value: bool) -> str:
    return "1" if value else "0"


#: How each declared type of a record attribute goes to a string and back.
#: Builtins where they do it, since a cookie's record is decoded on every
#: request: ``str`` returns a string as it is, ``"1".__eq__`` reads a flag.
_CONVERSIONS: dict[Any, tuple[Callable[[Any], str], Callable[[str], Any]]] = {
    str: (str, str),
    float: (number, float),
    bool: (_flag, "1".__eq__),
}

#: How one field is stored: name, to string, from string, value if absent.
_Field = tuple[str, Callable[[Any], str], Callable[[str], Any], Any]

#: The default of an attribute that has none: its field must be in the hash.
_REQUIRED: Any = dataclasses.MISSING


class HashCodec(Generic[R]):
    """Turns one record class into Redis hash fields and back.

    :param record_class: the dataclass.
    :param fields: its attribute names, in declaration order.
    :param key_field: the attribute the Redis key is named after, the first
        one; it is not stored in the hash, and :meth:`decode` is given it.
    """

    def __init__(
        self, record_class: Callable[..., R], fields: Sequence[str], key_field: str
    ) -> None:
        if fields[0] != key_field:
            raise ValueError(f"{key_field!r} must be the first field of the record")
        self.record_class = record_class
        self.key_field = key_field
        hints = typing.get_type_hints(record_class)
        defaults = {
            f.name: f.default
            for f in dataclasses.fields(record_class)  # type: ignore[arg-type]
        }
        #: (name, to string, from string, if absent) of every field in the hash,
        #: in declaration order: :meth:`decode` passes them by position.
        self._fields: list[_Field] = []
        self._chosen: dict[tuple[str, ...], list[_Field]] = {}
        for name in fields[1:]:
            kind = hints[name]
            optional = type(None) in typing.get_args(kind)
            if optional:
                (kind,) = (a for a in typing.get_args(kind) if a is not type(None))
            encode, decode = _CONVERSIONS[kind]
            absent = None if optional else defaults[name]
            self._fields.append((name, encode, decode, absent))

    def encode(self, record: R, only: tuple[str, ...] | None = None) -> list[str]:
        """``[field, value, field, value, ...]`` for ``HSET``; ``None`` left out.

        :param only: write these fields alone (an update), else every one.
        """
        out: list[str] = []
        for name, encode, _, _ in self._fields if only is None else self._only(only):
            value = getattr(record, name)
            if value is not None:
                out += (name, encode(value))
        return out

    def _only(self, names: tuple[str, ...]) -> list[_Field]:
        # Chosen once per tuple of names: an update encodes its six fields
        # without looking at the others.
        chosen = self._chosen.get(names)
        if chosen is None:
            chosen = [f for f in self._fields if f[0] in names]
            self._chosen[names] = chosen
        return chosen

    def decode(self, key: str, fields: dict[str, str] | Sequence[str]) -> R:
        """The record under ``key`` from its hash (``HGETALL``, as a mapping
        or as a script returns it: ``[field, value, ...]``).

        :raises KeyError: a field with no default is absent.
        """
        if not isinstance(fields, dict):
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        get = fields.get
        values = [key]
        for name, _, decode, absent in self._fields:
            raw = get(name)
            if raw is not None:
                values.append(decode(raw))
            elif absent is _REQUIRED:
                raise KeyError(name)
            else:
                values.append(absent)
        return self.record_class(*values)


SESSION: HashCodec[SessionRecord] = HashCodec(SessionRecord, SESSION_FIELDS, "key")
FAMILY: HashCodec[FamilyRecord] = HashCodec(FamilyRecord, FAMILY_FIELDS, "family_id")
REFRESH: HashCodec[RefreshRecord] = HashCodec(RefreshRecord, REFRESH_FIELDS, "key")
