"""`Stored Value Should Be`: polls a SQL value and fails once, saying what the database holds."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from ccskit.config import database_url_for
from ccskit.context import KitContext
from ccskit.keywords.database import DatabaseKeywords

DB_URL = database_url_for("postgres")


@pytest.fixture
def keywords() -> DatabaseKeywords:
    ctx = KitContext()
    ctx.use_database(DB_URL)
    return DatabaseKeywords(ctx)


def test_a_match_returns_the_value(keywords: DatabaseKeywords) -> None:
    assert keywords.stored_value_should_be("SELECT %s || '/' || %s", "2/0", 2, 0) == "2/0"


def test_a_mismatch_names_the_stored_value_after_the_wait(keywords: DatabaseKeywords) -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError) as failure:
        keywords.stored_value_should_be(
            "SELECT %s || '/' || %s",
            "2/0",
            1,
            0,
            what='expected "dana-tablet" delivered/read 2/0 in "team-room"',
            timeout=timedelta(seconds=0.5),
        )
    assert time.monotonic() - started >= 0.5
    message = str(failure.value)
    assert message.startswith(
        'expected "dana-tablet" delivered/read 2/0 in "team-room", but the database holds 1/0 after'
    )
    assert message.count("holds") == 1


def test_a_quoted_expectation_quotes_the_stored_text(keywords: DatabaseKeywords) -> None:
    with pytest.raises(AssertionError, match=r'holds "final words" when read at once$'):
        keywords.stored_value_should_be(
            "SELECT %s", "first draft", "final words", what='expected text "first draft"'
        )


def test_no_row_and_an_expectation_without_the_value(keywords: DatabaseKeywords) -> None:
    with pytest.raises(
        AssertionError, match=r"^expected the sender \(u/d\), but the database holds no row"
    ):
        keywords.stored_value_should_be("SELECT 1 WHERE false", "u/d", what="expected the sender")
