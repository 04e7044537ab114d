"""The quota policy: resolution across default, groups and user overrides, decisions and
their sentences, and refusals of bad amounts (tables, no processes)."""

from __future__ import annotations

import math

import pytest
from traitlets import TraitError

from jhub_af.accounting import BadRequest, QuotaPolicy, decide, effective_limits
from jhub_af.accounting.policy import ADVICE, TOO_BIG_ADVICE, remaining
from jhub_af.accounting.resources import parse_request

POLICY = {
    "defaults": {"servers": 1, "cores": 2, "memory": "4G", "gpus": {"*": 0}, "core_hours": 100},
    "groups": {
        "/atlas/users": {"cores": 8, "core_hours": 1000, "gpus": {"t4": 1}},
        "/atlas/power": {"cores": 16, "dask_workers": 10},
        "/cms/gpu": {"gpus": {"t4": 2, "p100": 1}, "gpu_hours": 50},
        "/cms/open": {"cores": None, "dask_workers": 0},
    },
    "users": {"alice": {"servers": 2, "cores": 1}, "bob": {"gpus": {"*": 3}}},
}


def policy(**overrides) -> QuotaPolicy:
    return QuotaPolicy(**{**POLICY, **overrides})


@pytest.mark.parametrize(
    ("id_", "user", "groups", "key", "value", "source", "group"),
    [
        ("default when no group sets it", "zed", ["/atlas"], "servers", 1, "default", ""),
        ("group value over default", "zed", ["/atlas/users"], "cores", 8, "group", "/atlas/users"),
        (
            "most generous group wins",
            "zed",
            ["/atlas/users", "/atlas/power"],
            "cores",
            16,
            "group",
            "/atlas/power",
        ),
        (
            "unlimited is most generous",
            "zed",
            ["/atlas/power", "/cms/open"],
            "cores",
            None,
            "group",
            "/cms/open",
        ),
        (
            "0 from one group, 10 from another",
            "zed",
            ["/cms/open", "/atlas/power"],
            "dask_workers",
            10,
            "group",
            "/atlas/power",
        ),
        ("0 alone forbids", "zed", ["/cms/open"], "dask_workers", 0, "group", "/cms/open"),
        ("user override wins even if stricter", "alice", ["/atlas/power"], "cores", 1, "user", ""),
        (
            "user override for one dim only",
            "alice",
            ["/atlas/power"],
            "dask_workers",
            10,
            "group",
            "/atlas/power",
        ),
        ("unset everywhere is unlimited", "zed", [], "dask_clusters", None, "none", ""),
        ("memory text in bytes", "zed", [], "memory", 4 * 1024**3, "default", ""),
        ("gpu type from group", "zed", ["/cms/gpu"], "gpus:p100", 1, "group", "/cms/gpu"),
        (
            "gpu type in two groups",
            "zed",
            ["/cms/gpu", "/atlas/users"],
            "gpus:t4",
            2,
            "group",
            "/cms/gpu",
        ),
        (
            "gpu type not named falls to default *",
            "zed",
            ["/cms/gpu"],
            "gpus:a100",
            0,
            "default",
            "",
        ),
        ("user * wins over group type", "bob", ["/cms/gpu"], "gpus:t4", 3, "user", ""),
    ],
)
def test_resolution(id_, user, groups, key, value, source, group):
    gpu_types = [key[5:]] if key.startswith("gpus:") else []
    limit = effective_limits(policy(), user, groups, gpu_types)[key]
    assert (limit.value, limit.source, limit.group) == (value, source, group), id_


def server(cores=1, memory="1G", gpus=None, user="zed"):
    return parse_request(
        {
            "user": user,
            "kind": "server",
            "resources": {"cores": cores, "memory": memory, "gpus": gpus or {}},
        }
    )


def dask_worker(cores=1, memory="2G", user="zed"):
    return parse_request(
        {"user": user, "kind": "dask-worker", "resources": {"cores": cores, "memory": memory}}
    )


def dask_cluster(user="zed"):
    return parse_request({"user": user, "kind": "dask-cluster"})


def _decide(user, groups, request, usage, p=None, **kw):
    p = p or policy()
    limits = effective_limits(p, user, groups, request.resources.gpus)
    return decide(limits, usage, request, period=p.period, warn_at=p.warn_at, **kw)


@pytest.mark.parametrize(
    ("id_", "user", "groups", "request_", "usage", "granted", "reason", "message"),
    [
        ("fits", "zed", ["/atlas/users"], server(4), {}, True, "", ""),
        (
            "gpu named by group",
            "zed",
            ["/atlas/users"],
            server(1, gpus={"t4": 1}),
            {"gpus:t4": 1, "servers": 0},
            False,
            "gpus",
            "Your group /atlas/users may run 1 t4 GPU at a time; you are using 1.",
        ),
        (
            "server count by default",
            "zed",
            ["/atlas/users"],
            server(1),
            {"servers": 1},
            False,
            "servers",
            "The facility's default quota lets you run 1 server at a time; you are using 1.",
        ),
        (
            "cores by user override",
            "alice",
            ["/atlas/users"],
            server(2),
            {},
            False,
            "cores",
            "Your personal quota lets you use 1 core at a time; you are using none and asked "
            "for 2 more.",
        ),
        (
            "memory in words",
            "zed",
            [],
            server(1, memory="6G"),
            {},
            False,
            "memory",
            "The facility's default quota lets you use 4G of memory at a time; you are using "
            "none and asked for 6G more.",
        ),
        (
            "forbidden gpu type",
            "zed",
            ["/atlas/users"],
            server(1, gpus={"p100": 1}),
            {},
            False,
            "gpus",
            "The facility's default quota lets you run no p100 GPUs. Ask your VO admin if you "
            "need it.",
        ),
        (
            "budget used up",
            "zed",
            [],
            server(1),
            {"core_hours": 100.04},
            False,
            "core_hours",
            "The facility's default quota lets you use 100 core-hours per month; you have used "
            "100 this month.",
        ),
        ("exactly at a limit is allowed", "zed", [], server(2, memory="4G"), {}, True, "", ""),
        (
            "dask workers by group",
            "zed",
            ["/atlas/power"],
            dask_worker(),
            {"dask_workers": 10},
            False,
            "dask_workers",
            "Your group /atlas/power may run 10 Dask workers at a time; you are using 10. "
            "Stop something you no longer need",
        ),
        (
            "dask workers forbidden",
            "zed",
            ["/cms/open"],
            dask_worker(),
            {},
            False,
            "dask_workers",
            "Your group /cms/open may run no Dask workers. Ask your VO admin if you need it.",
        ),
        ("dask cluster unlimited", "zed", [], dask_cluster(), {"dask_clusters": 7}, True, "", ""),
    ],
)
def test_decisions(id_, user, groups, request_, usage, granted, reason, message):
    d = _decide(user, groups, request_, usage)
    assert (d.granted, d.reason) == (granted, reason), id_
    assert d.message.startswith(message), (id_, d.message)


@pytest.mark.parametrize(
    ("id_", "usage", "request_", "advice"),
    [
        ("the request alone is too big", {}, server(3), TOO_BIG_ADVICE),
        ("too big even with some in use", {"cores": 1}, server(3), TOO_BIG_ADVICE),
        ("fits alone, not with what runs", {"cores": 1}, server(2), ADVICE),
    ],
)
def test_refusal_advice_says_what_helps(id_, usage, request_, advice):
    d = _decide("zed", [], request_, usage)
    assert (d.granted, d.reason) == (False, "cores"), id_
    assert d.message.endswith(f". {advice}"), (id_, d.message)


REMAINING_POLICY = {
    "defaults": {"servers": 1, "cores": 2, "memory": "4G", "gpus": {"*": 0}, "core_hours": 100},
    "groups": {"/cms/gpu": {"gpus": {"t4": 1}}},
    "group_totals": {"/cms/gpu": {"gpus": {"t4": 4}, "core_hours": 150}},
}


@pytest.mark.parametrize(
    ("id_", "groups", "usage", "group_usage", "key", "expected"),
    [
        ("nothing used", [], {}, {}, "servers", {"limit": 1, "in_use": 0, "left": 1}),
        ("cores in use", [], {"cores": 1.5}, {}, "cores", {"limit": 2, "in_use": 1.5, "left": 0.5}),
        (
            "memory in bytes",
            [],
            {"memory": 2**30},
            {},
            "memory",
            {"limit": 4 * 2**30, "in_use": 2**30, "left": 3 * 2**30},
        ),
        ("over the limit leaves 0", [], {"servers": 2}, {}, "servers",
         {"limit": 1, "in_use": 2, "left": 0}),
        ("unlimited is null", [], {"dask_workers": 3}, {}, "dask_workers",
         {"limit": None, "in_use": 3, "left": None}),
        ("forbidden type", [], {}, {}, "gpus:t4", {"limit": 0, "in_use": 0, "left": 0}),
        (
            "budget this period",
            [],
            {"core_hours": 12.25},
            {},
            "core_hours",
            {"limit": 100, "in_use": 12.25, "left": 87.75},
        ),
        (
            "own limit binds before the group total",
            ["/cms/gpu"],
            {},
            {"/cms/gpu": {"gpus:t4": 2}},
            "gpus:t4",
            {"limit": 1, "in_use": 0, "left": 1},
        ),
        (
            "group total binds",
            ["/cms/gpu"],
            {},
            {"/cms/gpu": {"gpus:t4": 4}},
            "gpus:t4",
            {"limit": 1, "in_use": 0, "left": 0, "capped_by": "/cms/gpu"},
        ),
        (
            "group budget binds",
            ["/cms/gpu"],
            {"core_hours": 10},
            {"/cms/gpu": {"core_hours": 120}},
            "core_hours",
            {"limit": 100, "in_use": 10, "left": 30, "capped_by": "/cms/gpu"},
        ),
    ],
)  # fmt: skip
def test_remaining(id_, groups, usage, group_usage, key, expected):
    p = QuotaPolicy(**REMAINING_POLICY)
    limits = effective_limits(p, "zed", groups, ["t4"])
    totals = {g: p.group_totals[g] for g in p.total_groups(groups)}
    got = remaining(limits, usage, group_totals=totals, group_usage=group_usage)
    assert got[key] == expected, id_
    assert set(got) == set(limits)


def test_soft_threshold_warns_but_grants():
    d = _decide("zed", [], server(1), {"core_hours": 85})
    assert d.granted
    assert d.warnings == ("You have used 85 of 100 core-hours this month (85%).",)
    assert _decide("zed", [], server(1), {"core_hours": 79}).warnings == ()


def test_budget_ignored_when_request_has_no_cores():
    cluster = parse_request({"user": "zed", "kind": "dask-cluster"})
    assert _decide("zed", [], cluster, {"core_hours": 500}).granted


def test_group_total_caps_the_whole_group():
    p = policy(group_totals={"/cms/gpu": {"gpus": {"t4": 4}, "gpu_hours": 200}})
    req = server(1, gpus={"t4": 1})
    kw = {"group_totals": p.group_totals}
    ok = _decide("zed", ["/cms/gpu"], req, {}, p, group_usage={"/cms/gpu": {"gpus:t4": 3}}, **kw)
    assert ok.granted
    full = _decide("zed", ["/cms/gpu"], req, {}, p, group_usage={"/cms/gpu": {"gpus:t4": 4}}, **kw)
    assert (full.granted, full.reason) == (False, "gpus")
    assert full.message == (
        "Group /cms/gpu may run 4 t4 GPUs at a time across all its members; its members are "
        "using 4. Try again when some are stopped."
    )
    spent = _decide(
        "zed", ["/cms/gpu"], req, {}, p, group_usage={"/cms/gpu": {"gpu_hours": 200}}, **kw
    )
    assert (spent.granted, spent.reason) == (False, "gpu_hours")
    assert spent.message.startswith("Group /cms/gpu has used its budget of 200 GPU-hours")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"user": "a", "kind": "server", "resources": {"cores": -1}},
            "resources.cores must not be negative.",
        ),
        (
            {"user": "a", "kind": "server", "resources": {"cores": math.nan}},
            "resources.cores must be a finite number.",
        ),
        (
            {"user": "a", "kind": "server", "resources": {"cores": math.inf}},
            "resources.cores must be a finite number.",
        ),
        (
            {"user": "a", "kind": "server", "resources": {"cores": 1e12}},
            "resources.cores is larger than any node can hold (at most 4096).",
        ),
        (
            {"user": "a", "kind": "server", "resources": {"cores": True}},
            "resources.cores must be a number, not bool.",
        ),
        (
            {"user": "a", "kind": "server", "resources": {"cores": "4"}},
            "resources.cores must be a number, not str.",
        ),
        (
            {"user": "a", "kind": "server", "resources": {"memory": "1000000T"}},
            "resources.memory is larger than any node can hold",
        ),
        (
            {"user": "a", "kind": "server", "resources": {"memory": "8Q"}},
            "resources.memory must be bytes or text like 8G, not '8Q'.",
        ),
        (
            {"user": "a", "kind": "server", "resources": {"gpus": {"t4": 1.5}}},
            "resources.gpus.t4 must be a whole number.",
        ),
        (
            {"user": "a", "kind": "server", "resources": {"gpus": {"t4; rm": 1}}},
            "resources.gpus has a GPU type that is not a plain name.",
        ),
        (
            {"user": "a", "kind": "server", "resources": {"gpus": {"t4": -1}}},
            "resources.gpus.t4 must not be negative.",
        ),
        ({"user": "a", "kind": "vm"}, "kind must be one of server, dask-cluster, dask-worker."),
        ({"user": "", "kind": "server"}, "user must be the name of a hub user."),
        (
            {"user": "a", "kind": "server", "groups": ["/admin"]},
            "Unknown field 'groups' in the request.",
        ),
        (
            {"user": "a", "kind": "server", "server": "../x y"},
            "server must be a server or cluster name",
        ),
        ([1, 2], "The request body must be a JSON object."),
    ],
)
def test_bad_amounts_refused(body, error):
    with pytest.raises(BadRequest) as e:
        parse_request(body)
    assert str(e.value).startswith(error)


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"defaults": {"servres": 1}}, "QuotaPolicy.defaults has unknown dimension 'servres'"),
        ({"defaults": {"cores": -2}}, "QuotaPolicy.defaults.cores must be a finite number >= 0"),
        ({"groups": {"/a": {"cores": math.nan}}}, "QuotaPolicy.groups['/a'].cores must be"),
        ({"users": {"a": {"gpus": 1}}}, "QuotaPolicy.users['a'].gpus must map GPU types"),
        ({"defaults": {"servers": "two"}}, "QuotaPolicy.defaults.servers must be a number"),
        ({"period": "fortnight"}, "QuotaPolicy.period must be one of day, week, month, year"),
        ({"warn_at": 0}, "QuotaPolicy.warn_at must be a fraction > 0"),
    ],
)
def test_bad_policy_named_in_error(config, error):
    with pytest.raises((ValueError, TraitError)) as e:
        QuotaPolicy(**config)
    assert error in str(e.value)


def test_unlimited_spelled_both_ways():
    p = QuotaPolicy(defaults={"cores": "unlimited", "servers": None})
    limits = effective_limits(p, "x", [])
    assert limits["cores"].unlimited and limits["servers"].unlimited
