"""kopf's toggle sets, as patched: same semantics, woken on flips only (no cluster)."""

from __future__ import annotations

import asyncio
from typing import Any

from kopf._cogs.aiokits import aiotoggles

from modelreg.controller import kopf_fixes

FlipToggleSet = kopf_fixes.flip_toggle_set_class(aiotoggles.ToggleSet)


class Counting(FlipToggleSet):  # type: ignore[misc,valid-type]
    checks = 0

    def is_on(self) -> bool:
        type(self).checks += 1
        return bool(super().is_on())


def test_the_start_up_barrier_is_linear_in_the_number_of_objects() -> None:
    """kopf's pattern: every object's worker adds a toggle, drops it when indexed, then
    waits for the set to be all on. kopf's own set checks N² times here (a million)."""
    n = 1000

    async def main() -> None:
        barrier: Any = Counting(all)
        blocker = await barrier.make_toggle(name="listing")

        async def worker(toggle: Any) -> None:
            await barrier.drop_toggle(toggle)
            await barrier.wait_for(True)

        tasks = []
        for i in range(n):  # objects arrive one by one from the listing
            tasks.append(asyncio.create_task(worker(await barrier.make_toggle(name=str(i)))))
            for _ in range(3):
                await asyncio.sleep(0)
        await barrier.drop_toggle(blocker)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
        assert barrier.is_on()

    Counting.checks = 0
    asyncio.run(main())
    assert Counting.checks < 10 * n, Counting.checks


def test_waiters_see_the_set_flip_both_ways() -> None:
    async def main() -> None:
        paused: Any = FlipToggleSet(any)
        assert paused.is_off()
        await asyncio.wait_for(paused.wait_for(False), 1)  # already off: returns
        toggle = await paused.make_toggle(name="peering")
        waiting = asyncio.create_task(paused.wait_for(True))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await toggle.turn_to(True)  # a toggle flips the set
        await asyncio.wait_for(waiting, 1)
        waiting = asyncio.create_task(paused.wait_for(False))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await paused.drop_toggle(toggle)
        await asyncio.wait_for(waiting, 1)

    asyncio.run(main())


def test_an_individual_toggle_can_still_be_waited_for() -> None:
    async def main() -> None:
        toggles: Any = FlipToggleSet(all)
        toggle = await toggles.make_toggle(name="one")
        waiting = asyncio.create_task(toggle.wait_for(True))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await toggle.turn_to(True)
        await asyncio.wait_for(waiting, 1)
        assert toggles.is_on()

    asyncio.run(main())


def test_apply_patches_kopf_once(monkeypatch: Any) -> None:
    monkeypatch.setattr(aiotoggles, "ToggleSet", aiotoggles.ToggleSet)  # restored after
    assert kopf_fixes.apply()
    patched = aiotoggles.ToggleSet
    assert getattr(patched, "_modelreg_flip", False)
    assert kopf_fixes.apply()
    assert aiotoggles.ToggleSet is patched
