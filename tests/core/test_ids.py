from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_signoff.core.ids import (
    MAX_SECRET_LENGTH,
    hash_secret,
    key_tag,
    new_public_id,
    new_secret,
    parse_secret,
    random_tag,
)


def test_new_secret_has_256_random_bits_and_the_tag() -> None:
    tag = random_tag()
    secrets_ = {new_secret(tag) for _ in range(200)}
    assert len(secrets_) == 200
    for s in secrets_:
        assert len(s) == MAX_SECRET_LENGTH
        assert parse_secret(s) == tag


def test_hash_secret_keeps_only_tag_and_digest() -> None:
    secret = new_secret(random_tag())
    key = hash_secret(secret)
    random_part = secret.partition(".")[2]
    assert random_part not in key
    assert key == f"{secret[:8]}.{hashlib.sha256(secret.encode()).hexdigest()}"
    assert key_tag(key) == secret[:8]


def test_public_ids_are_unique_and_not_secrets() -> None:
    ids = {new_public_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(parse_secret(i) is None for i in ids)


@pytest.mark.slow  # Hypothesis: seconds
@given(st.text(max_size=200))
def test_parse_secret_is_total(value: str) -> None:
    tag = parse_secret(value)
    if tag is not None:
        assert value.startswith(tag + ".")
        assert value.isascii()


def test_parse_secret_refuses_near_misses() -> None:
    good = new_secret("0123abcd")
    assert parse_secret(good) == "0123abcd"
    for bad in [
        good[:-1],
        good + "A",
        good.replace(".", "-"),
        "0123ABCD" + good[8:],  # tags are lower-case hex
        good[:-1] + "=",
        good[:-1] + "é",
        good + "\n",
        "",
    ]:
        assert parse_secret(bad) is None, bad
