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
