"""af-ssh's scope check, against a table and against JupyterHub's own ``check_scopes``."""

from __future__ import annotations

import pytest
from jupyterhub.services.auth import check_scopes

from jhub_af.ssh.scopes import has_scope

ACCESS = "access:servers!server=alice/"  # may use alice's default server
START = "servers!user=alice"  # may start it
SSH = "custom:jhub-af:ssh!user=alice"  # is meant for SSH as alice

CASES = [
    # (id, required, the token's scopes, granted)
    ("a /hub/token token (user filter)", ACCESS, ["access:servers!user=alice"], True),
    ("a server-filtered token (JupyterHub 5+)", ACCESS, ["access:servers!server=alice/"], True),
    ("an unfiltered scope", ACCESS, ["access:servers"], True),
    ("another user's servers", ACCESS, ["access:servers!user=bob"], False),
    ("bob's server", ACCESS, ["access:servers!server=bob/"], False),
    ("alice's named server only", ACCESS, ["access:servers!server=alice/gpu"], False),
    ("a user named alice/ is not alice", ACCESS, ["access:servers!user=alice/"], False),
    ("a group is not resolved", ACCESS, ["access:servers!group=physics"], False),
    ("another scope", ACCESS, ["servers!user=alice", "read:servers!user=alice"], False),
    ("a longer scope name", ACCESS, ["access:servers:x!user=alice"], False),
    ("no scopes", ACCESS, [], False),
    ("start: the user's servers", START, ["servers!user=alice"], True),
    ("start: every server", START, ["servers"], True),
    ("start: one server is not the user's servers", START, ["servers!server=alice/"], False),
    ("start: read only", START, ["read:servers!user=alice"], False),
    ("start: access only", START, ["access:servers!user=alice"], False),
    ("start: another user", START, ["servers!user=bob"], False),
    (
        "start: among many (a default token of JupyterHub 5/6)",
        START,
        ["read:users:name!user=alice", "servers!user=alice", "access:servers!user=alice"],
        True,
    ),
    ("unfiltered required, filtered held", "servers", ["servers!user=alice"], False),
    ("unfiltered required, unfiltered held", "servers", ["servers"], True),
    ("server required, user name without a slash", "servers!server=alice", [START], True),
    ("ssh: a token-page token (the user role)", SSH, [SSH, "access:servers!user=alice"], True),
    (
        "ssh: the server's own token (the server role)",
        SSH,
        ["access:servers!server=alice/", "users:activity!user=alice"],
        False,
    ),
    ("ssh: another user's", SSH, ["custom:jhub-af:ssh!user=bob"], False),
    ("ssh: a longer custom scope", SSH, ["custom:jhub-af:ssh-x!user=alice"], False),
]


@pytest.mark.parametrize(
    ("required", "scopes", "granted"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_has_scope(required, scopes, granted):
    assert has_scope(required, scopes) is granted
    # the behaviour af-ssh had when it imported JupyterHub's check
    assert bool(check_scopes({required}, set(scopes))) is granted


def test_a_malformed_held_scope_grants_nothing():
    assert has_scope(ACCESS, ["access:servers!user="]) is False
    assert has_scope(ACCESS, ["access:servers!user=", "access:servers!user=alice"]) is True
