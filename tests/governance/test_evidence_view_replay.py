"""A frozen policy replay, summarised on a decision's page, states the two-sided errors."""

from __future__ import annotations

import json

from tianping.governance.evidence_view import summarise

ERRORS = {"policy": "p@1", "source": "ground truth (refund_truth)", "honest_refused_rate": 0.0123,
          "abusive_paid_rate": 0.5}  # fmt: skip
OUTCOME = {"policy": "p@1", "requests": 10, "auto_decision_rate": 0.9,
           "refunded_by_merchant": "1.00", "refunded_by_platform": "2.00", "refunded_total": "3.00",
           "abuse_loss": None}  # fmt: skip


def _content(errors: list[dict]) -> str:
    sections = {"window": [{"from": "2024-01-01", "to": "2024-01-31", "requests": 10}],
                "outcome": [OUTCOME], "two-sided errors": errors}  # fmt: skip
    return json.dumps({"policy": "p", "version": "1", "sections": sections})


def test_the_facts_name_both_errors_and_their_source():
    facts = dict(summarise("policy-replay", _content([ERRORS]))["facts"])
    assert facts["p@1"].endswith(
        "; honest buyers refused 1.23%, abusive claims paid 50.00% (ground truth (refund_truth))"
    )


def test_unknown_errors_read_unknown_and_older_replays_have_none():
    unknown = ERRORS | {"source": "unknown", "honest_refused_rate": "unknown",
                        "abusive_paid_rate": "unknown"}  # fmt: skip
    facts = dict(summarise("policy-replay", _content([unknown]))["facts"])
    assert "honest buyers refused unknown, abusive claims paid unknown (unknown)" in facts["p@1"]
    older = dict(summarise("policy-replay", _content([]))["facts"])
    assert "honest buyers" not in older["p@1"]
