import datetime as dt

from modelreg.conditions import FALSE, TRUE, find, is_true, remove, set_condition

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def test_transition_time_moves_only_on_change():
    cs = set_condition([], "Ready", FALSE, "Pending", "waiting", 1, T0)
    same = set_condition(cs, "Ready", FALSE, "Pending", "waiting", 2, T1)
    assert find(same, "Ready").last_transition_time == T0
    assert find(same, "Ready").observed_generation == 2
    changed = set_condition(same, "Ready", TRUE, "Deployable", "ok", 2, T1)
    assert find(changed, "Ready").last_transition_time == T1
    assert is_true(changed, "Ready")


def test_conditions_keep_their_order_and_are_removed_by_type():
    cs = set_condition([], "A", TRUE, "R", "", 1, T0)
    cs = set_condition(cs, "B", TRUE, "R", "", 1, T0)
    cs = set_condition(cs, "A", FALSE, "R", "", 1, T0)
    assert [c.type for c in cs] == ["A", "B"]
    assert [c.type for c in remove(cs, "A")] == ["B"]
    assert not is_true(cs, "missing")
