"""Cluster options by group (pure): the bounds each user gets, and what the handler sets."""

from __future__ import annotations

import pytest
from dask_gateway_server.models import User

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
