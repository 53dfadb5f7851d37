"""The JSON request parser of the REST API, bounded in depth.

Request bodies are flat (a list of symbols, or an object holding one), so a body
nested deeper than ``MAX_DEPTH`` is refused with a 400 that says so. Without the
bound, a few kilobytes of ``[[[[...]]]]`` make Python's json raise RecursionError,
which DRF does not catch: a 500 with a traceback.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """True when ``value`` nests lists/objects deeper than ``limit`` (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser; too deep a body is a ParseError (400), never a 500."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: dict[str, Any] | None = None,
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(
                f"JSON parse error - nested deeper than {MAX_DEPTH} levels"
            ) from exc
        if json_depth_exceeds(data, MAX_DEPTH):
            raise ParseError(
                f"JSON parse error - nested deeper than {MAX_DEPTH} levels"
            )
        return data
