"""Device selection: marker parsing, exact matching with overlapping wants, reasons."""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_collab.errors import CollabError, SelectionError
from pytest_collab.lan.profile import LAN, Controller, Device, load_profile
from pytest_collab.select import (Constraint, constraint_from_marker, describe,
                                  select_devices, unsatisfiable_reason)


@pytest.fixture(scope="module")
def local() -> LAN:
    return load_profile("local", Path(__file__).resolve().parent.parent)


def lan(*devices: Device) -> LAN:
    return LAN(name="t", path=None, controller=Controller(), devices=list(devices))


def names(selection: dict[str, list[Device]]) -> dict[str, list[str]]:
    return {want: [d.name for d in found] for want, found in selection.items()}


def want(*args: object, **kwargs: object) -> Constraint:
    return constraint_from_marker(args, kwargs)


# --- marker ----------------------------------------------------------------------------

def test_marker_keywords_and_tags() -> None:
    c = want(jetson=2, rpi=1, tags=["gpu"])
    assert c == Constraint(counts={"jetson": 2, "rpi": 1}, tags=("gpu",))
    assert str(c) == "devices(jetson=2, rpi=1, tags=['gpu'])"
    assert hash(c) == hash(want(jetson=2, rpi=1, tags=["gpu"]))


def test_marker_single_dict_allows_dashed_names() -> None:
    assert want({"gpu-less": 1, "tags": "tail"}) == Constraint({"gpu-less": 1}, ("tail",))


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {"jetson": 0}, "the count for 'jetson' must be a positive integer, got 0 (int)"),
    ((), {"rpi": True}, "the count for 'rpi' must be a positive integer, got True (bool)"),
    ((), {"rpi": "2"}, "the count for 'rpi' must be a positive integer, got '2' (str)"),
    ((), {}, "name at least one kind or tag with a count, e.g. devices(rpi=1)"),
    ((), {"tags": ["edge"]}, "name at least one kind or tag with a count, e.g. devices(rpi=1)"),
    ((), {"rpi": 1, "tags": [1]}, "tags must be a list of strings, got [1] (list)"),
    (("rpi",), {}, "takes kind=count keywords or one dict, got positional ('rpi',) (tuple)"),
    (({"rpi": 1},), {"rpi": 2}, "'rpi' given twice"),
    (({"rpi#2": 1},), {}, "'rpi#2' is not a kind or tag name"),
])
def test_marker_errors(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(CollabError) as info:
        constraint_from_marker(args, kwargs)
    assert str(info.value) == f"@pytest.mark.devices: {message}"


# --- selection -------------------------------------------------------------------------

def test_kinds_are_taken_in_profile_order(local: LAN) -> None:
    assert names(select_devices(local, want(jetson=2, rpi=1))) == {
        "jetson": ["jetson-1", "jetson-2"], "rpi": ["rpi-1"]}


def test_tag_want_keeps_devices_a_kind_want_needs(local: LAN) -> None:
    # 'edge' matches jetsons and rpis; the rpis go to 'edge' so 'jetson' still has its own
    assert names(select_devices(local, want(edge=2, jetson=2))) == {
        "edge": ["rpi-1", "rpi-2"], "jetson": ["jetson-1", "jetson-2"]}


def test_overlap_that_needs_backtracking() -> None:
    # a and b both match x and one other want; x taking a (profile order) leaves y nothing
    a = Device("a", "x", tags=("y",))
    b = Device("b", "x", tags=("w",))
    c = Device("c", "w")
    selection = select_devices(lan(a, b, c), want(x=1, y=1, w=1))
    assert names(selection) == {"x": ["b"], "y": ["a"], "w": ["c"]}


def test_multi_match_devices_are_used_last() -> None:
    a = Device("a", "x", tags=("y",))
    b = Device("b", "x")
    assert names(select_devices(lan(a, b), want(x=1, y=1))) == {"x": ["b"], "y": ["a"]}


def test_no_device_is_double_booked(local: LAN) -> None:
    selection = select_devices(local, want(edge=4, jetson=1, rpi=1))
    chosen = [d.name for found in selection.values() for d in found]
    assert len(chosen) == len(set(chosen)) == 6
    assert all(d.kind == "jetson" for d in selection["jetson"])


def test_tags_filter_every_selected_device(local: LAN) -> None:
    assert names(select_devices(local, want(server=1, tags=["tail"]))) == {"server": ["server-1"]}
    with pytest.raises(SelectionError) as info:
        select_devices(local, want(rpi=1, tags=["tail"]))
    assert str(info.value) == ("profile 'local' has 0 device(s) matching 'rpi' with tags "
                               "'tail', the test needs 1")


def test_selection_is_deterministic(local: LAN) -> None:
    c = want(edge=3, rpi=2)
    assert names(select_devices(local, c)) == names(select_devices(local, c))


# --- reasons ---------------------------------------------------------------------------

def test_reason_is_none_when_satisfiable(local: LAN) -> None:
    assert unsatisfiable_reason(local, want(edge=6)) is None


def test_reason_names_the_short_kind(local: LAN) -> None:
    one_jetson = lan(*[d for d in local.devices if d.name != "jetson-2"])
    one_jetson.name = "local"
    assert unsatisfiable_reason(one_jetson, want(jetson=2, rpi=1)) == (
        "profile 'local' has 1 device(s) matching 'jetson' (jetson-1), the test needs 2")


def test_reason_lists_every_short_want(local: LAN) -> None:
    assert unsatisfiable_reason(local, want(gpu=1, rpi=5)) == (
        "profile 'local' has 0 device(s) matching 'gpu', the test needs 1; "
        "profile 'local' has 4 device(s) matching 'rpi' (rpi-1, rpi-2, rpi-3, rpi-4), "
        "the test needs 5")


def test_reason_for_wants_fine_alone_but_not_together(local: LAN) -> None:
    c = want(jetson=2, edge=5)
    message = ("profile 'local' has 6 distinct device(s) matching 'jetson' or 'edge' "
               "(jetson-1, jetson-2, rpi-1, rpi-2, rpi-3, rpi-4), the test needs 7 "
               "(jetson=2, edge=5)")
    assert unsatisfiable_reason(local, c) == message
    with pytest.raises(SelectionError) as info:
        select_devices(local, c)
    assert str(info.value) == message


def test_describe(local: LAN) -> None:
    assert describe(select_devices(local, want(jetson=2, rpi=1))) == (
        "jetson: jetson-1, jetson-2; rpi: rpi-1")
    assert describe({}) == "no devices"
