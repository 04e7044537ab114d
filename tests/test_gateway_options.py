"""Cluster options by group (pure): the bounds each user gets, what the handler sets,
the partitions offered, and the maximum lifetime each group gets."""

from __future__ import annotations

import pytest
from dask_gateway_server.models import User

from jhub_af.gateway.housekeeping import lifetime_for
from jhub_af.gateway.options import GIB, bounds_for, group_options

SETTINGS = {
    "default": {"worker_cores": 1, "worker_memory": 2, "idle_timeout": 1800},
    "groups": {
        "/atlas/users": {"worker_cores": 4, "idle_timeout": 3600, "environments": {"atlas": {}}},
        "/atlas/power": {"worker_cores": 8, "worker_memory": 32, "idle_timeout": 0},
        "/guests": {"worker_memory": 1, "idle_timeout": 600},
    },
}


@pytest.mark.parametrize(
    ("groups", "cores", "memory", "idle", "environments"),
    [
        ([], 1, 2, 1800, ["default"]),
        (["/atlas"], 1, 2, 1800, ["default"]),
        (["/atlas/users"], 4, 2, 3600, ["atlas"]),
        (["/atlas/users", "/atlas/power"], 8, 32, 0, ["atlas"]),
        # a group may be stricter than the default
        (["/guests"], 1, 1, 600, ["default"]),
        (["/guests", "/atlas/users"], 4, 1, 3600, ["atlas"]),
    ],
)
def test_bounds_by_group(groups, cores, memory, idle, environments):
    b = bounds_for(SETTINGS, groups)
    assert (b["worker_cores"], b["worker_memory"], b["idle_timeout"]) == (cores, memory, idle)
    assert sorted(b["environments"]) == environments


def test_handler_turns_choices_into_cluster_config():
    options = group_options(SETTINGS)(User("alice", groups=["/atlas/users"]))
    chosen = options.parse_options({"worker_cores": 3, "worker_memory": 2})
    config = options.get_configuration(chosen, User("alice"))
    assert config == {
        "worker_cores": 3.0,
        "worker_memory": 2 * GIB,
        "idle_timeout": 3600.0,
        "environment": {},
    }


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ({"worker_cores": 5}, "worker_cores must be <= 4"),
        ({"worker_cores": 0.5}, "worker_cores must be >= 1"),
        ({"worker_cores": "2"}, "worker_cores must be a number, got '2'"),
        ({"worker_memory": float("inf")}, "worker_memory must be a number, got 'inf'"),
        ({"environment": "cms"}, "'cms' is not a valid option for environment"),
        ({"idle_timeout": 0}, "Unknown fields ['idle_timeout']"),
    ],
)
def test_forged_options_refused(request_, error):
    options = group_options(SETTINGS)(User("alice", groups=["/atlas/users"]))
    with pytest.raises((TypeError, ValueError)) as info:
        options.parse_options(request_)
    assert error in str(info.value)


PARTITIONS = {
    "default": {"partitions": ["short"]},
    "groups": {"/atlas/hpc": {"partitions": ["long", "short"]}, "/gpu": {"partitions": ["gpu"]}},
}


@pytest.mark.parametrize(
    ("groups", "offered"),
    [
        ([], ["short"]),
        (["/atlas/hpc"], ["short", "long"]),
        (["/atlas/hpc", "/gpu"], ["short", "long", "gpu"]),
    ],
)
def test_partitions_by_group(groups, offered):
    assert bounds_for(PARTITIONS, groups)["partitions"] == offered
    options = group_options(PARTITIONS)(User("u", groups=groups))
    config = options.get_configuration(options.parse_options({}), User("u"))
    assert config["partition"] == "short"  # the first is the default


def test_partition_of_another_group_refused_and_none_without_partitions():
    options = group_options(PARTITIONS)(User("u", groups=["/atlas/hpc"]))
    with pytest.raises(ValueError, match="'gpu' is not a valid option for partition"):
        options.parse_options({"partition": "gpu"})
    plain = group_options(SETTINGS)(User("u", groups=[]))
    assert "partition" not in plain.get_configuration(plain.parse_options({}), User("u"))
    with pytest.raises(ValueError, match=r"Unknown fields \['partition'\]"):
        plain.parse_options({"partition": "short"})


@pytest.mark.parametrize(
    ("default", "by_group", "groups", "lifetime"),
    [
        (0, {}, ["/atlas"], 0),
        (86400, {}, ["/atlas"], 86400),
        (86400, {"/guests": 3600}, ["/atlas"], 86400),
        # a group may be stricter than the default
        (86400, {"/guests": 3600}, ["/guests"], 3600),
        # the most generous of the user's groups; 0 (no limit) is the most generous
        (86400, {"/guests": 3600, "/atlas/users": 7200}, ["/guests", "/atlas/users"], 7200),
        (3600, {"/atlas/long": 0, "/guests": 600}, ["/guests", "/atlas/long"], 0),
    ],
)
def test_lifetime_by_group(default, by_group, groups, lifetime):
    assert lifetime_for(default, by_group, groups) == lifetime
