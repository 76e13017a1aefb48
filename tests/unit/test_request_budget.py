"""The operator's own request budget: per Compute policy, reserved before waiting, never mistaken for Azure's 429."""

from __future__ import annotations

import asyncio

import pytest

from scaleset_image_operator.azure.budget import (
    COMPUTE_LIMITS_PER_MINUTE,
    OPERATION_GET,
    SCALE_SET_GET,
    VM_LIST,
    RequestBudget,
)
from scaleset_image_operator.azure.errors import BudgetSpent, Throttled, Transient

SUB = "00000000-0000-0000-0000-000000000001"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_policy_gets_its_share_of_computes_own_limit() -> None:
    budget = RequestBudget(share=0.5, clock=Clock())
    assert budget.per_minute(VM_LIST) == 180.0
    assert budget.per_minute(SCALE_SET_GET) == 400.0
    assert budget.per_minute(OPERATION_GET) == 2500.0
    assert all(budget.available(SUB, policy) == limit * 0.5 for policy, limit in COMPUTE_LIMITS_PER_MINUTE.items())


async def test_spending_one_policy_leaves_the_others_whole() -> None:
    budget = RequestBudget(share=0.05, clock=Clock())  # 18 VM lists per minute
    for _ in range(18):
        await budget.spend(SUB, (VM_LIST, 1.0))
    assert budget.available(SUB, VM_LIST) == 0.0
    assert budget.available(SUB, OPERATION_GET) == 250.0
    await budget.spend(SUB, (OPERATION_GET, 1.0))  # no wait: another policy


async def test_an_observation_takes_all_its_tokens_or_none() -> None:
    clock = Clock()
    budget = RequestBudget(share=0.05, max_wait=1.0, clock=clock)
    budget.debit(SUB, VM_LIST, 18.0 + 18.0)  # a minute of debt on the VM lists: 60 s to wait
    before = budget.available(SUB, SCALE_SET_GET)
    with pytest.raises(BudgetSpent) as caught:
        await budget.spend(SUB, (SCALE_SET_GET, 1.0), (VM_LIST, 1.0))
    # The scale-set GET was not spent on a pass that could not list the instances.
    assert budget.available(SUB, SCALE_SET_GET) == before
    assert caught.value.retry_after == pytest.approx(60.0 + 60.0 / 18.0)


async def test_the_operators_own_budget_is_not_azure_throttling_and_blocks_nothing() -> None:
    clock = Clock()
    budget = RequestBudget(share=0.05, max_wait=1.0, clock=clock)
    budget.debit(SUB, VM_LIST, 40.0)
    with pytest.raises(BudgetSpent) as caught:
        await budget.spend(SUB, (VM_LIST, 1.0))
    assert isinstance(caught.value, Transient) and not isinstance(caught.value, Throttled)
    assert caught.value.reason == "RequestBudgetSpent"
    assert "Azure has not throttled" in caught.value.message
    assert budget.blocked_for(SUB) == 0.0
    await budget.spend(SUB, (SCALE_SET_GET, 1.0))  # the subscription's other requests go on


async def test_the_message_is_the_same_every_time_so_it_makes_one_event() -> None:
    clock = Clock()
    budget = RequestBudget(share=0.05, max_wait=1.0, clock=clock)
    budget.debit(SUB, VM_LIST, 40.0)
    messages = set()
    for _ in range(3):
        with pytest.raises(BudgetSpent) as caught:
            await budget.spend(SUB, (VM_LIST, 1.0))
        messages.add(caught.value.message)
        clock.now += 7.0
    assert len(messages) == 1


async def test_azure_429_blocks_the_subscription_until_its_retry_after() -> None:
    clock = Clock()
    budget = RequestBudget(clock=clock)
    budget.block(SUB, 30.0)
    with pytest.raises(Throttled) as caught:
        await budget.spend(SUB.upper(), (SCALE_SET_GET, 1.0))
    assert caught.value.retry_after == pytest.approx(30.0)
    clock.now += 30.0
    await budget.spend(SUB, (SCALE_SET_GET, 1.0))


async def test_concurrent_waiters_queue_one_behind_the_other() -> None:
    budget = RequestBudget(share=6.0 / 360.0, max_wait=5.0)  # 6 VM lists per minute: one every 10 s
    budget.debit(SUB, VM_LIST, 6.0 - 0.01)  # all but the first waiter's hundredth of a token
    waits: list[float] = []

    async def one() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            await budget.spend(SUB, (VM_LIST, 0.01))
        except BudgetSpent:
            waits.append(-1.0)
            return
        waits.append(loop.time() - start)

    await asyncio.gather(*(one() for _ in range(4)))
    # Each reserved its hundredth of a token before sleeping: 0, then 0.1 s, 0.2 s, 0.3 s apart (not all at once).
    assert sorted(waits) == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=0.06)
