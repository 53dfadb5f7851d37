"""Redactor: the key, any run of 6+ of its characters, and apikey= parameters."""

from __future__ import annotations

import logging

from websockets.frames import Frame, Opcode

from realtime.upstream.redaction import RedactingLogger, Redactor

KEY = "k3yFRAGMENTsecret2026"


def test_whole_key_fragments_and_url_parameters_are_masked():
    redact = Redactor(KEY)
    assert redact(f"x{KEY}y") == "x***y"
    assert redact(f"head {KEY[:7]}...") == "head ***..."
    assert redact(f"{KEY[5:12]} and {KEY[-6:]}") == "*** and ***"
    assert redact("wss://h/?apikey=other&x=1") == "wss://h/?apikey=***&x=1"
    assert redact(KEY[:5]) == KEY[:5], "five characters are not a fragment"
    assert redact("nothing to hide") == "nothing to hide"
    assert Redactor("")("apiKey=abc") == "apiKey=***"


def test_frames_are_redacted_before_they_are_shortened(caplog):
    target = logging.getLogger("tests.redaction")
    adapter = RedactingLogger(target, Redactor(KEY))
    payload = ("x" * 40 + KEY + "y" * 300).encode()
    caplog.set_level(logging.DEBUG, logger="tests.redaction")
    adapter.debug("< %s", Frame(Opcode.TEXT, payload))
    (record,) = caplog.records
    line = record.getMessage()
    assert "***" in line and "[361 bytes]" in line
    assert all(KEY[i : i + 6] not in line for i in range(len(KEY) - 5))
    adapter.error("failed", exc_info=ValueError(f"bad key {KEY}"))
    assert KEY not in caplog.text and "error=ValueError: bad key ***" in caplog.text


def test_upper_cased_and_percent_encoded_forms_of_the_key_are_masked():
    """Issue 28: a proxy's upper-cased header or a URL-quoted key slipped through."""
    redact = Redactor(KEY)
    assert redact(f"KEY={KEY.upper()}") == "KEY=***"
    assert redact(f"key={KEY.lower()}!") == "key=***!"
    assert redact(f"part {KEY.upper()[3:11]} end") == "part *** end"
    quoted_key = "ab+cd/ef=gh12"
    quoted = Redactor(quoted_key)
    assert quoted("token=ab%2Bcd%2Fef%3Dgh12;") == "token=***;"
    assert quoted("token=ab%2bcd%2fef%3dgh12;") == "token=***;"
    assert quoted("q=AB%2BCD%2FEF%3DGH12") == "q=***"
    assert quoted("nothing to hide") == "nothing to hide"
