"""Units keep their arm while a race re-weights; only new units follow the new split."""

from __future__ import annotations

from tianping.experiments.assignment import ExperimentConfig, Snapshot, Variant
from tianping.races.allocation import moved_share
from tianping.races.sticky import StickyClient


def _snap(weights):
    variants = tuple(Variant(n, w) for n, w in zip("abcd", weights, strict=True))
    return Snapshot((ExperimentConfig("race", "race", variants),))


def test_units_keep_their_arm_and_new_units_follow_the_new_weights():
    old, new = [1, 1, 1, 1], [0.7, 0.1, 0.1, 0.1]
    store: dict[str, str] = {}
    seen = []
    c = StickyClient(_snap(old), store, on_exposure=seen.append)
    first = {u: c.variant("race", u) for u in range(4000)}
    c.update(_snap(new))
    again = {u: c.variant("race", u) for u in range(4000)}
    assert again == first
    assert len(seen) == 4000  # one exposure per unit, always with its kept arm
    fresh = [c.variant("race", u) for u in range(4000, 14000)]
    assert abs(fresh.count("a") / len(fresh) - 0.7) < 0.02
    # without the store, about 65% of the first units would have changed arm
    plain = StickyClient(_snap(new), {})
    moved = sum(plain.variant("race", u) != first[u] for u in range(4000)) / 4000
    assert abs(moved - moved_share(old, new)) < 0.03


def test_a_remembered_arm_that_no_longer_exists_is_drawn_again():
    store = {"race\x1fu1": "gone"}
    assert StickyClient(_snap([1, 1, 1, 1]), store).variant("race", "u1") in "abcd"
    assert store["race\x1fu1"] != "gone"


def test_the_confirmation_enrols_fresh_units_only():
    race = ExperimentConfig("r", "r", (Variant("a"), Variant("b")))
    check = ExperimentConfig("r.confirm", "r.confirm", (Variant("a"), Variant("b")))
    store: dict[str, str] = {}
    c = StickyClient(Snapshot((race,)), store)
    raced = [u for u in range(100) if c.variant("r", u) is not None]
    c.update(Snapshot((check,)))
    assert all(c.variant("r.confirm", u) is None for u in raced)
    assert all(c.variant("r.confirm", u) in ("a", "b") for u in range(100, 200))
