"""Running a group of long-lived asyncio tasks as one unit.

The feed runner (lock renewal, control channel, housekeeping) and the upstream
client (reader, sender, idle watchdog) each run a few tasks that live and die
together: when one ends, by error or on purpose, the others must stop too, and
the first error must surface instead of being lost in a cancelled sibling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


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
