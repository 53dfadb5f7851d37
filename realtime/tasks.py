"""Running a group of long-lived asyncio tasks as one unit.

The feed runner (lock renewal, control channel, housekeeping) and the upstream
client (reader, sender, idle watchdog) each run a few tasks that live and die
together: when one ends, by error or on purpose, the others must stop too, and
the first error must surface instead of being lost in a cancelled sibling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any


async def until_first_done(tasks: Sequence[asyncio.Task]) -> None:
    """Wait until one of ``tasks`` ends; re-raise its exception, if any."""
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        task.result()


async def cancel_all(tasks: Sequence[asyncio.Task]) -> None:
    """Cancel ``tasks`` and wait for them to finish, whatever they raise."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def start_watched(
    loops: Mapping[str, Coroutine[Any, Any, None]],
    on_done: Callable[[asyncio.Task[None]], Any],
) -> list[asyncio.Task[None]]:
    """Start each named loop as a task; ``on_done`` hears when any of them ends.

    The hub's parts (writer, pacing, lease) run loops that must never end while
    the hub lives: the hub's ``on_done`` turns an early end into a loud failure.
    """
    tasks = [asyncio.create_task(loop, name=name) for name, loop in loops.items()]
    for task in tasks:
        task.add_done_callback(on_done)
    return tasks
