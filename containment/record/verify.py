"""Verify the ledger for a period: walk each evidence chain, check every link and every
record's hash, check the chains against the digests, and name what does not match, the first
(in the order it was recorded) first.

What is checked (containment.adapters.ledger keeps the chains):

- every sequence of each chain from the first place recorded in the period to the last, and
  the one after it where the chain goes on: none missing (`missing sequence`), each naming
  the previous one's hash (`broken link`);
- the record each place names: there (`missing record`), hashing to what its place holds
  (`hash mismatch`, naming the fields that differ where its by-day copy still has them); a
  provisional record a final one replaced is checked against the copy kept beside its place;
- each record's by-day copy, which exports read: there and the same (`by-day copy missing`,
  `by-day copy differs`);
- every decision recorded in the period, and every by-day copy of its days, named by its chain
  (`not in a chain`: added since, or written before the ledger was chained);
- each chain's head names its last place (`head not matching its chain`);
- every digest written in the period and the first one after it: each head it lists is still
  in its chain with the same hash (`head not matching a digest`).

Places recorded after the last digest checked are listed as not yet bounded by a digest: an
attacker with write access to the ledger could still rewrite them whole, consistently.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from containment.adapters.ledger import (CHAINS, GENESIS, HEAD, RECORD_HASH, Ledger, entry_row, record_hash,
                                         resource_partition, superseded_row)

_SYSTEM = ("PartitionKey", "RowKey")


@dataclass(frozen=True)
class Mismatch:
    what: str
    detail: str
    at: str  # when the place, record or head was recorded (ns since the epoch, as `recorded_at`): orders them
    chain: int | None = None
    sequence: int | None = None
    key: str | None = None
    resource_id: str | None = None

    def sentence(self) -> str:
        where = f"chain {self.chain} sequence {self.sequence}" if self.sequence is not None else (
            f"chain {self.chain}" if self.chain is not None else "")
        record = f"decision {self.key} on {self.resource_id or '(no resource)'}" if self.key else ""
        named = ", ".join(part for part in (record, where) if part)
        return f"{self.what}: {named}: {self.detail}" if named else f"{self.what}: {self.detail}"


@dataclass
class Verification:
    start: datetime
    end: datetime
    records: int = 0
    digests: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    unbounded: list[str] = field(default_factory=list)

    def ordered(self) -> list[Mismatch]:
        """In the order what they name was recorded (then by chain and place)."""
        return sorted(self.mismatches, key=lambda m: (m.at, -1 if m.chain is None else m.chain, m.sequence or 0))

    def as_dict(self) -> dict[str, Any]:
        ordered = self.ordered()
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "verified": not self.mismatches,
                "records": self.records, "digests": self.digests,
                "first_mismatch": asdict(ordered[0]) if ordered else None,
                "mismatches": [asdict(m) for m in ordered], "not_yet_bounded_by_a_digest": self.unbounded}


def _ns(moment: datetime) -> str:
    return f"{int(moment.timestamp() * 1_000_000) * 1000:020d}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _differences(chained: dict, now: dict) -> str:
    names = sorted(n for n in set(chained) | set(now) if n not in (*_SYSTEM, RECORD_HASH) and chained.get(n) != now.get(n))
    return "; ".join(f"{n}: {_shown(chained.get(n))} when chained, now {_shown(now.get(n))}" for n in names)


class _Walk:
    def __init__(self, ledger: Ledger, start: datetime, end: datetime):
        self.ledger, self.result = ledger, Verification(start, end)
        self.since, self.until = _ns(start), _ns(end)
        # Decisions recorded in the period, by their entity's keys; those a chain vouches for are checked off.
        self.recorded = {(e["PartitionKey"], e["RowKey"]): e for e in ledger.decision_entities(self.since, self.until)}
        self.vouched: set[tuple[str, str]] = set()
        self.named: set[tuple[str, str]] = set()  # records a mismatch names already: named once

    def found(self, what: str, detail: str, at: str, **where: Any) -> None:
        self.result.mismatches.append(Mismatch(what, detail, at, **where))

    # -- one chain ------------------------------------------------------------------------------
    def chain(self, chain: int, floor: int = 0) -> tuple[int, int] | None:
        """Walk the chain by sequence: from the place after `floor` (what the last digest
        before the period saw) to its head, every place and its record, whatever `recorded_at`
        says (no hash covers a place's time, so a place moved out of the period by its time
        is walked all the same); the first and last sequence walked."""
        ledger = self.ledger
        entries = {e["sequence"]: e for e in ledger.chain_entries(chain, self.since, self.until)}
        head = ledger.chain_entity(chain, HEAD)
        self._head(chain, head)
        top = max([*entries, head["sequence"] if head is not None else 0])
        if top <= floor:
            return None
        low = min([*entries, floor + 1]) if entries else floor + 1
        high = last = top
        previous = ledger.chain_entity(chain, entry_row(low - 1)) if low > 1 else {RECORD_HASH: GENESIS}
        if previous is None:
            self._missing(chain, low - 1, entries[low]["recorded_at"])
        for sequence in range(low, last + 1):
            entry = entries.get(sequence) or ledger.chain_entity(chain, entry_row(sequence))
            if entry is None:
                following = next((entries[s] for s in range(sequence + 1, high + 1) if s in entries), None)
                self._missing(chain, sequence, (following or previous or {}).get("recorded_at", self.until))
                previous = None
                continue
            if previous is not None and entry["previous_hash"] != previous[RECORD_HASH]:
                self.found("broken link", f"it names previous hash {entry['previous_hash']}; sequence {sequence - 1} "
                                          f"hashes to {previous[RECORD_HASH]}", entry["recorded_at"], chain=chain,
                           sequence=sequence, key=entry["key"], resource_id=entry["resource_id"])
            self._record(chain, entry)
            previous = entry
        return low, high

    def _missing(self, chain: int, sequence: int, at: str) -> None:
        """A place gone from its chain, naming the record that claims it, where one does."""
        claimed = next((located for located, e in self.recorded.items()
                        if e.get("chain") == chain and e.get("sequence") == sequence), None)
        record = self.recorded[claimed] if claimed else {}
        if claimed:
            self.named.add(claimed)
        self.found("missing sequence", "the chain has no entry for it (deleted)", record.get("recorded_at", at),
                   chain=chain, sequence=sequence, key=record.get("key"), resource_id=record.get("resource_id"))

    def _head(self, chain: int, head: dict | None) -> None:
        if head is None:
            return
        last = self.ledger.chain_entity(chain, entry_row(head["sequence"]))
        after = self.ledger.chain_entity(chain, entry_row(head["sequence"] + 1))
        if after is not None and (self.ledger.chain_entity(chain, HEAD) or head)["sequence"] > head["sequence"]:
            after = None  # appended to while this was read: entry and head move together
        if last is None or last[RECORD_HASH] != head[RECORD_HASH] or after is not None:
            self.found("head not matching its chain", f"its head names sequence {head['sequence']} with hash "
                       f"{head[RECORD_HASH]}; the chain holds "
                       f"{'no such entry' if last is None else last[RECORD_HASH]} there"
                       f"{' and goes on after it' if after is not None else ''}", head["recorded_at"],
                       chain=chain, sequence=head["sequence"], key=head["key"])

    # -- the record a place names ----------------------------------------------------------------
    def _record(self, chain: int, entry: dict) -> None:
        sequence, key, resource_id = entry["sequence"], entry["key"], entry["resource_id"]
        where = {"chain": chain, "sequence": sequence, "key": key, "resource_id": resource_id}
        located = (resource_partition(resource_id), key)
        record = self.recorded.get(located) or self.ledger.decision_entity(resource_id, key)
        self.result.records += 1
        if record is None:
            self.found("missing record", "its chain names it; the ledger has no such record (deleted)",
                       entry["recorded_at"], **where)
            return
        if record.get("chain") != chain or record.get("sequence") != sequence:
            self._superseded(entry, record, where)
            return
        if str(record.get("recorded_at")) != str(entry.get("recorded_at")):
            self.found("time differs", f"the record says recorded {record.get('recorded_at')}, its place "
                                       f"{entry.get('recorded_at')}", entry["recorded_at"], **where)
        self.vouched.add(located)
        copy = self.ledger.day_copy(record.get("decided_at"), key)
        intact = record_hash(record) == entry[RECORD_HASH]
        if not intact:
            if copy is not None and record_hash(copy) == entry[RECORD_HASH]:
                detail = "changed since it was chained: " + _differences(copy, record)
            else:
                detail = (f"its fields hash to {record_hash(record)}; its chain holds {entry[RECORD_HASH]} (the chain "
                          "keeps the hash, not the fields: what changed cannot be told)")
            self.found("hash mismatch", detail, entry["recorded_at"], **where)
        if copy is None:
            self.found("by-day copy missing", f"exports read the day index, which does not show it "
                                              f"(decided {record.get('decided_at')})", entry["recorded_at"], **where)
        elif record_hash(copy) != entry[RECORD_HASH]:
            self.found("by-day copy differs", "exports show what was not chained: " + (
                _differences(record, copy) if intact else f"it hashes to {record_hash(copy)}"),
                entry["recorded_at"], **where)

    def _superseded(self, entry: dict, record: dict, where: dict) -> None:
        """The record under the place's key holds another place: it must be the final record
        that replaced this provisional one, kept whole beside the place."""
        chain, sequence = where["chain"], where["sequence"]
        kept = self.ledger.chain_entity(chain, superseded_row(sequence))
        if (record.get("chain") == chain and record.get("supersedes") == sequence and kept is not None
                and kept.get("provisional") is True and kept.get("key") == entry["key"]
                and record_hash(kept) == entry[RECORD_HASH]):
            return
        self.found("hash mismatch", f"the record under its key is not the one chained here (it claims chain "
                                    f"{record.get('chain')} sequence {record.get('sequence')}), and no provisional "
                                    "record it replaced is kept here", entry["recorded_at"], **where)

    # -- what no chain names -------------------------------------------------------------------
    def unchained(self) -> None:
        for located, record in self.recorded.items():
            if located not in self.vouched | self.named:
                self.named.add(located)
                self.found("not in a chain", f"recorded in the period, but no chain names it (it claims chain "
                                             f"{record.get('chain')} sequence {record.get('sequence')}): added since, "
                                             "or written before the ledger was chained", record.get("recorded_at", ""),
                           key=record.get("key"), resource_id=record.get("resource_id"))
        day = self.result.start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < self.result.end:
            for copy in self.ledger.day_copies(day):
                located = (resource_partition(copy.get("resource_id")), copy.get("key"))
                if located not in self.vouched | self.named and not self._chained_elsewhere(copy):
                    self.found("not in a chain", f"a by-day copy (exports read it) that no chain names "
                                                 f"(day {day:%Y-%m-%d})", copy.get("recorded_at", ""),
                               key=copy.get("key"), resource_id=copy.get("resource_id"))
            day += timedelta(days=1)

    def _chained_elsewhere(self, copy: dict) -> bool:
        """A by-day copy of a decision recorded outside the period, as its chain holds it."""
        if not isinstance(copy.get("chain"), int) or not isinstance(copy.get("sequence"), int):
            return False
        entry = self.ledger.chain_entity(copy["chain"], entry_row(copy["sequence"]))
        return entry is not None and entry["key"] == copy.get("key") and entry[RECORD_HASH] == record_hash(copy)

    # -- the digests ---------------------------------------------------------------------------
    def floors(self) -> dict[int, int]:
        """Per chain, the sequence the last digest before the period saw: the walk starts after
        it (what a digest saw, later digests and the walk's links vouch for)."""
        before = [n for n in self.ledger.digest_names() if _ns_of_digest(n) < self.since][-1:]
        try:
            return {h["chain"]: h["sequence"] for n in before for h in json.loads(self.ledger.digest(n))["chains"]}
        except (ValueError, KeyError, TypeError):
            return {}  # an unreadable digest: walk from the chains' starts
    def digests(self, walked: dict[int, tuple[int, int]]) -> None:
        """Every digest written in the period and the first after it: what each says of a chain
        must still hold. Places walked beyond the last of them are not yet bounded."""
        names = self.ledger.digest_names()
        period = [n for n in names if self.since <= _ns_of_digest(n) < self.until]
        after = [n for n in names if _ns_of_digest(n) >= self.until][:1]
        bounded: dict[int, int] = {}
        for name in period + after:
            self.result.digests.append(name)
            try:
                digest = json.loads(self.ledger.digest(name))
                heads = [(h["chain"], h["sequence"], h[RECORD_HASH], h["key"], h["recorded_at"])
                         for h in digest["chains"]]
            except (ValueError, KeyError, TypeError) as error:
                self.found("digest unreadable", f"digest {name}: {type(error).__name__}: {error}", _ns_of_digest(name))
                continue
            for chain, sequence, digested, key, at in heads:
                bounded[chain] = max(bounded.get(chain, 0), sequence)
                entry = self.ledger.chain_entity(chain, entry_row(sequence))
                if entry is None or entry[RECORD_HASH] != digested:
                    self.found("head not matching a digest",
                               f"digest {name} says the chain was at sequence {sequence} with hash {digested}; the "
                               f"chain holds {'no such sequence' if entry is None else entry[RECORD_HASH]} there",
                               at, chain=chain, sequence=sequence, key=key,
                               resource_id=entry["resource_id"] if entry else None)
        for chain, (low, high) in sorted(walked.items()):
            if high > bounded.get(chain, 0):
                self.result.unbounded.append(f"chain {chain}: sequences {max(low, bounded.get(chain, 0) + 1)} to {high}")


def _ns_of_digest(name: str) -> str:
    """A digest's time from its name, `<YYYY-MM-DD>/<ISO time>.json`."""
    try:
        return _ns(datetime.fromisoformat(name.split("/", 1)[1].removesuffix(".json").replace("Z", "+00:00")))
    except (IndexError, ValueError):
        return ""


def verify(ledger: Ledger, start: datetime, end: datetime) -> Verification:
    """Everything recorded in [start, end) checked against its chain and the digests."""
    walk = _Walk(ledger, start.astimezone(timezone.utc), end.astimezone(timezone.utc))
    floors = walk.floors()
    walked = {}
    for chain in range(CHAINS):
        places = walk.chain(chain, floors.get(chain, 0))
        if places is not None:
            walked[chain] = places
    walk.unchained()
    walk.digests(walked)
    return walk.result
