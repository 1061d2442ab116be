"""A fix for kopf's start-up with many objects (applied by ``modelreg run``).

With indices (controller/cache.py), kopf holds every object's handlers back until all
objects are indexed: each object's worker adds a toggle to one set, drops it once its
object is indexed, and then waits on the set's condition for all toggles to be gone.
Every drop wakes every waiting worker, so a start with N objects costs about N²/2
wake-ups: a few seconds at 1,000 versions, and at 10,000 no reconcile had started after
13 minutes, one core busy waking workers (benchmarks/, docs/benchmarks.md).

:class:`FlipToggleSet` keeps kopf's semantics but wakes the set's waiters only when the
set's state flips (a toggle set is on or off as a whole), so the start is linear. The
individual toggles still share the set's condition, and whoever waits on one of them is
woken as before. If kopf's internals change shape, nothing is patched and a warning says
so: the operator then starts as slowly as kopf does, and is otherwise unaffected.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class _Owner(Protocol):
    def _changed(self) -> None: ...


def flip_toggle_set_class(base: type[Any]) -> type[Any]:
    """A subclass of kopf's ``ToggleSet`` whose ``wait_for`` wakes on flips only."""

    class _Condition(asyncio.Condition):
        """The condition the set's toggles notify on; tells the set of every change."""

        def __init__(self, owner: _Owner) -> None:
            super().__init__()
            self._owner = owner

        def notify_all(self) -> None:
            super().notify_all()
            self._owner._changed()

    class FlipToggleSet(base):  # type: ignore[misc]
        _modelreg_flip = True

        def __init__(self, fn: Callable[[Iterable[bool]], bool]) -> None:
            super().__init__(fn)
            self._condition = _Condition(self)
            self._on, self._off = asyncio.Event(), asyncio.Event()
            self._changed()

        def _changed(self) -> None:
            on = self.is_on()
            (self._on.set if on else self._on.clear)()
            (self._off.clear if on else self._off.set)()

        async def wait_for(self, __state: bool) -> None:
            flipped = self._on if __state else self._off
            while self.is_on() != bool(__state):
                await flipped.wait()

    FlipToggleSet.__name__ = FlipToggleSet.__qualname__ = "FlipToggleSet"
    return FlipToggleSet


def apply() -> bool:
    """Make kopf create its toggle sets as :class:`FlipToggleSet`; whether it did."""
    aiotoggles: Any
    try:
        aiotoggles = importlib.import_module("kopf._cogs.aiokits.aiotoggles")
    except ImportError:
        aiotoggles = None
    base = getattr(aiotoggles, "ToggleSet", None)
    if base is None or not all(
        callable(getattr(base, name, None))
        for name in ("is_on", "wait_for", "make_toggle", "drop_toggle")
    ):
        log.warning(
            "kopf's ToggleSet is not where modelreg expects it: its start-up stays "
            "quadratic in the number of objects (controller/kopf_fixes.py)"
        )
        return False
    if getattr(base, "_modelreg_flip", False):
        return True
    aiotoggles.ToggleSet = flip_toggle_set_class(base)
    return True
