"""The blast-radius budget across instances (containment.adapters.ledger.Ledger.spend_budget):
each instance spends from the entity as it last wrote it, without reading it first; another
instance's spending since fails the ETag and is read then, so the hour's count stays exact;
a hold is decided only on what was just read; what wrote nothing is given back to the
minute it was spent in. Real Azurite, two ledgers on one table as two instances."""
from __future__ import annotations

from containment.adapters.ledger import Ledger

NOW = 1_790_000_000.0  # seconds; a minute boundary is far from it


def instances(app) -> tuple[Ledger, Ledger]:
    first = app.runtime.ledger
    return first, Ledger(first.table, first.evidence, first.chains, first.digests)


def spent(ledger: Ledger) -> int:
    import json

    return sum(json.loads(ledger.table.get_entity("budget", "containment")["per_minute"]).values())


def budget_calls(ledger: Ledger, spend) -> list[str]:
    """The Table calls a spend makes, as Azurite's request log would show them: counted by
    wrapping the ledger's table client calls (the SDK itself is untouched)."""
    made: list[str] = []
    table = ledger.table

    class Counting:
        def __getattr__(self, name):
            attribute = getattr(table, name)
            if name in ("get_entity", "create_entity", "update_entity"):
                def call(*args, **kwargs):
                    made.append(name)
                    return attribute(*args, **kwargs)
                return call
            return attribute

    ledger.table = Counting()
    try:
        spend()
    finally:
        ledger.table = table
    return made


def test_two_instances_spending_in_turn_count_every_action_and_each_reads_only_after_the_other(app):
    a, b = instances(app)
    assert a.spend_budget(2, 10, NOW) is None
    assert budget_calls(a, lambda: a.spend_budget(1, 10, NOW)) == ["update_entity"]  # its own ETag: no read
    assert budget_calls(b, lambda: b.spend_budget(3, 10, NOW)) == ["get_entity", "update_entity"]
    # a's ETag is stale now: its update fails, it reads, and spends on the true count.
    assert budget_calls(a, lambda: a.spend_budget(1, 10, NOW)) == ["update_entity", "get_entity",
                                                                        "update_entity"]
    assert spent(a) == 7


def test_a_hold_is_decided_on_a_fresh_read_not_on_what_the_instance_wrote(app):
    a, b = instances(app)
    assert a.spend_budget(9, 10, NOW) is None
    b.refund_budget(9, NOW)  # another instance gave it all back since
    assert a.spend_budget(5, 10, NOW) is None  # a read again before holding: it fits
    assert spent(b) == 5
    assert b.spend_budget(6, 10, NOW) == 5  # beyond the limit: nothing spent, what the hour holds said
    assert spent(a) == 5


def test_a_refund_goes_back_to_the_minute_it_was_spent_in_and_never_below_nothing(app):
    a, _ = instances(app)
    assert a.spend_budget(3, 100, NOW) is None
    assert a.spend_budget(2, 100, NOW + 120) is None
    a.refund_budget(5, NOW)  # more than that minute holds: it goes to nothing, the later minute keeps its 2
    assert spent(a) == 2
    a.refund_budget(1, NOW - 7200)  # a minute long gone: nothing to give back
    assert spent(a) == 2
