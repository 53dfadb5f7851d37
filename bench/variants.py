"""One invocation, several configurations: ``--web-procs`` and ``--clients`` lists.

``--web-procs 2,4`` runs the scaled target once per number of daphne web
processes, ``--clients 1000,10000`` every target once per client count, back to
back on the same box with the same simulator and harness, so that the summary
can set them side by side (bench/compare.py). Each run is one entry of the
results' ``targets``, named so that runs never overwrite each other:
``fmpsite-scaled-4web``, ``fmpsite-embedded-10000clients``. Without the options
the names (and results) are the ones every earlier run used.
"""

from __future__ import annotations

from dataclasses import dataclass

SCALED = "fmpsite-scaled"
DEFAULT_WEBS = 2  # the scaled target's web processes without --web-procs


def parse_counts(text: str, option: str) -> list[int]:
    """``"4,2"`` -> ``[2, 4]``: positive, distinct, in ascending order (the
    smallest is the base the others are compared with)."""
    values: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = int(item)
        except ValueError:
            raise SystemExit(f"{option} wants whole numbers, not {item!r}") from None
        if value < 1:
            raise SystemExit(f"{option} wants numbers >= 1, not {value}")
        values.append(value)
    if not values:
        raise SystemExit(f"{option} wants at least one number, not {text!r}")
    return sorted(set(values))


@dataclass(frozen=True)
class Variant:
    """One run: a target of bench/targets.py with its client count and, for the
    scaled target under ``--web-procs``, its number of web processes."""

    target: str
    clients: int
    web_procs: int | None = None  # None: the target's own (scaled: DEFAULT_WEBS)
    tag_clients: bool = False  # several client counts in this invocation

    @property
    def name(self) -> str:
        """The run's key in the results' ``targets``."""
        name = self.target
        if self.web_procs is not None:
            name += f"-{self.web_procs}web"
        if self.tag_clients:
            name += f"-{self.clients}clients"
        return name

    @property
    def webs(self) -> int | None:
        """Daphne web processes of a scaled run; None for other targets."""
        if self.target != SCALED:
            return None
        return self.web_procs or DEFAULT_WEBS

    def label(self, target_label: str) -> str:
        return target_label + (
            f", {self.clients:,} clients" if self.tag_clients else ""
        )


def plan(
    targets: list[str], clients: list[int], web_procs: list[int] | None
) -> list[Variant]:
    """Every run of the invocation, in order: per target, per client count, per
    number of web processes, so that the runs compared are back to back."""
    if web_procs and SCALED not in targets:
        raise SystemExit(f"--web-procs needs the {SCALED} target in --targets")
    tag = len(clients) > 1
    runs: list[Variant] = []
    for target in targets:
        webs: list[int | None] = list(web_procs or []) if target == SCALED else []
        for count in clients:
            for w in webs or [None]:
                runs.append(Variant(target, count, w, tag_clients=tag))
    return runs
