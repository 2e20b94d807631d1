"""The ring scenario: identity attributes on orders, rings, serial returners, marked truth."""

from __future__ import annotations

import pytest
from sim_helpers import simulate_to

from tianping.simulate.service import load_scenario
from tianping.simulate.tables import ABUSE_KINDS

RUN = {"buyers": 6_000, "days": 60, "seed": 5, "merchants": 200}


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    return simulate_to(tmp_path_factory.mktemp("rings"), scenario=load_scenario("rings"), **RUN)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    return simulate_to(tmp_path_factory.mktemp("plain"), scenario=load_scenario("default"), **RUN)


def frame(tables, name):
    return tables[name].to_pandas()


def test_every_order_carries_the_three_attributes_mostly_known(default_run):
    orders = frame(default_run, "orders")
    for column, prefix in (("device_id", "D"), ("address_hash", "A"), ("payment_fingerprint", "F")):
        known = orders[column].dropna()
        assert 0.95 < known.size / len(orders) < 0.995, column  # 2 % missing by default
        assert known.str.startswith(prefix).all()


def test_default_scenario_has_no_rings_but_shared_lockers_and_households(default_run):
    buyers = frame(default_run, "sim_buyers")
    assert buyers.ring_id.isna().all() and not buyers.serial_returner.any()
    assert frame(default_run, "refund_truth").abuse_kind.isin([None, *ABUSE_KINDS[1:3]]).all()
    orders = frame(default_run, "orders").dropna(subset=["address_hash"])
    accounts = orders.groupby("address_hash").buyer_id.nunique()
    assert accounts.max() > 10  # a parcel locker serves many accounts (200 lockers)
    assert (accounts == 2).sum() > 10  # households


def test_ring_accounts_share_attributes_and_are_marked(ring_run):
    buyers = frame(ring_run, "sim_buyers")
    members = buyers.dropna(subset=["ring_id"])
    sizes = members.groupby("ring_id").size()
    assert 0.004 < len(members) / len(buyers) < 0.006
    assert sizes.between(3, 8).all()
    assert (members.honesty == "professional").all()
    orders = frame(ring_run, "orders").merge(members[["buyer_id", "ring_id"]], on="buyer_id")
    # a ring's devices are used by several of its accounts, and by no one outside it
    devices = (
        orders.dropna(subset=["device_id"]).groupby("device_id").ring_id.agg(["nunique", "size"])
    )
    ring_devices = orders[orders.device_id.str.startswith("D3", na=False)]
    assert ring_devices.groupby("device_id").buyer_id.nunique().max() >= 3
    assert (devices.loc[ring_devices.device_id.unique(), "nunique"] == 1).all()


def test_ring_claims_come_in_bursts(ring_run):
    truth = frame(ring_run, "refund_truth")
    refunds = frame(ring_run, "refunds").merge(truth, on="refund_id")
    ring = refunds[refunds.abuse_kind == "ring"]
    assert len(ring) > 50 and ring.abusive.all() and ring.ring_id.notna().all()
    # most of a ring's false claims fall within four days of another account's claim
    orders = frame(ring_run, "orders")[["order_id", "buyer_id"]]
    ring = ring.merge(orders, on="order_id").sort_values(["ring_id", "requested_at"])
    gap = ring.groupby("ring_id").requested_at.diff().dt.total_seconds() / 86400
    assert (gap.dropna() < 4).mean() > 0.6


def test_truth_kinds_follow_the_claims(ring_run):
    truth = frame(ring_run, "refund_truth")
    refunds = frame(ring_run, "refunds").merge(truth, on="refund_id")
    assert set(truth.abuse_kind.dropna()) == set(ABUSE_KINDS)
    assert (refunds.abusive == refunds.abuse_kind.isin(ABUSE_KINDS[:3])).all()
    empty = refunds[refunds.abuse_kind == "empty_parcel"]
    assert (empty.reason == "not_received").all()
    serial = refunds[refunds.abuse_kind == "serial_return"]
    assert (serial.reason == "change_of_mind").all() and not serial.abusive.any()


def test_serial_returners_change_their_mind_far_more_often(ring_run):
    buyers = frame(ring_run, "sim_buyers")
    serial = buyers[buyers.serial_returner]
    assert 0.005 < len(serial) / len(buyers) < 0.015
    ratio = serial.change_of_mind.mean() / buyers[~buyers.serial_returner].change_of_mind.mean()
    assert 6 < ratio < 10
