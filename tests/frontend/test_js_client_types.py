"""The JS client's TypeScript declarations (clients/js/index.d.ts, issue 27).

- ``tsc --noEmit`` (typescript pinned in tests/frontend/package.json and its
  lockfile) compiles ``types/usage.ts``, a strict TypeScript user of the module:
  the options (``tokenProvider`` among them), every event's payload (``Bar``,
  the token events) and the methods. Its ``@ts-expect-error`` lines make a
  declaration that loosens to ``any`` fail the check as surely as one that
  breaks.
- The declarations name exactly the module's exports, read by importing
  price-stream.js in node: a function added to the module without a
  declaration (or a declaration left after its function went) fails here.

Marked ``live``: it runs node and, on a fresh clone, ``npm ci`` (the registry).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.frontend.npm import HERE, installed_bin, run

pytestmark = pytest.mark.live

CLIENT = HERE.parent.parent / "clients" / "js"


def test_declarations_compile_for_a_strict_typescript_user() -> None:
    tsc = installed_bin("tsc")
    run([str(tsc), "--noEmit", "-p", "types"], "tsc --noEmit -p tests/frontend/types")


def _declared_exports(dts: Path) -> set[str]:
    return set(
        re.findall(
            r"^export declare (?:const|function|class) (\w+)",
            dts.read_text(encoding="utf-8"),
            flags=re.MULTILINE,
        )
    )


def test_declarations_name_every_export_of_the_module() -> None:
    installed_bin("tsc")  # node and npm are there
    script = (
        "import(process.argv[1]).then((m) => "
        "console.log(JSON.stringify(Object.keys(m))))"
    )
    module = (CLIENT / "price-stream.js").resolve().as_uri()
    out = run(["node", "-e", script, module], "node import of price-stream.js")
    exported = set(json.loads(out))
    assert exported, "price-stream.js exports nothing?"
    assert _declared_exports(CLIENT / "index.d.ts") == exported
