"""The audit hash chain as pure functions: any edit, deletion or reordering is found."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import numpy as np

from tianping.audit.canonical import Frozen, dumps
from tianping.audit.chain import GENESIS, ChainEntry, entry_hash, verify


def _chain(n: int) -> list[ChainEntry]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        fields = {"seq": seq, "at": f"2026-03-01T09:00:0{seq}+00:00", "actor": "ana",
                  "key_id": None, "action": "decision.voted", "subject": "decision:1",
                  "detail": '{"choice":"approve"}'}  # fmt: skip
        h = entry_hash(prev, fields)
        out.append(ChainEntry(seq, fields, prev, h))
        prev = h
    return out


def test_an_untouched_chain_verifies_and_reports_its_head():
    entries = _chain(5)
    v = verify(entries)
    assert v.ok and v.entries == 5 and v.head == entries[-1].hash


def test_an_edited_row_is_found():
    entries = _chain(5)
    edited = dict(entries[2].fields, actor="mallory")
    entries[2] = dataclasses.replace(entries[2], fields=edited)
    v = verify(entries)
    assert not v.ok
    assert [(p.seq, p.reason) for p in v.problems] == [
        (3, "content does not match its hash (edited)")
    ]


def test_a_rehashed_edit_breaks_the_next_link():
    entries = _chain(5)
    fields = dict(entries[2].fields, actor="mallory")
    entries[2] = ChainEntry(
        3, fields, entries[2].prev_hash, entry_hash(entries[2].prev_hash, fields)
    )
    assert [p.seq for p in verify(entries).problems] == [4]


def test_deleted_and_reordered_rows_are_found():
    entries = _chain(5)
    assert {p.seq for p in verify(entries[:2] + entries[3:]).problems} == {4}
    swapped = [entries[0], entries[2], entries[1], *entries[3:]]
    assert verify(swapped).problems


def test_canonical_json_is_one_byte_string_per_value():
    value = {"b": [Decimal("1.10"), date(2024, 1, 2)], "a": np.float64(0.5), "c": float("inf")}
    assert dumps(value) == '{"a":0.5,"b":["1.10","2024-01-02"],"c":null}'
    assert dumps({"z": 1, "a": {"y": 2, "x": 3}}) == dumps({"a": {"x": 3, "y": 2}, "z": 1})
    frozen = Frozen.of({"天平": 1})
    assert frozen.content == '{"天平":1}' and frozen.intact()
    assert not Frozen(frozen.content.replace("1", "2"), frozen.sha256).intact()
