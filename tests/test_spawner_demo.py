"""The demo facility's profiles: what each demo user is offered, and what they get."""

import pytest
from harness import login, stop_server

from jhub_af.hub import spawn_body

pytestmark = pytest.mark.integration

CARDS = {
    "alice": ["default", "large"],
    "bob": ["default"],
    "admin": ["default", "cvmfs", "t4", "p100"],
}


@pytest.mark.parametrize(("user", "slugs"), CARDS.items())
def test_each_demo_user_sees_the_profiles_of_their_groups(demo_facility, user, slugs):
    s = login(demo_facility.url, user, "demo")
    if s.get(f"{demo_facility.url}/hub/api/user", timeout=10).json()["servers"]:
        stop_server(s, demo_facility.url, user)  # another test left it running: no form then
    form = s.get(f"{demo_facility.url}/hub/spawn", timeout=10).text
    shown = [s for s in ["default", "large", "cvmfs", "t4", "p100"] if f'id="profile-{s}"' in form]
    assert shown == slugs
    assert 'value="default" checked>' in " ".join(form.split())


def test_admin_sees_real_facility_cards_that_say_no_cluster_is_attached(demo_facility):
    s = login(demo_facility.url, "admin", "demo")
    if s.get(f"{demo_facility.url}/hub/api/user", timeout=10).json()["servers"]:
        stop_server(s, demo_facility.url, "admin")
    form = s.get(f"{demo_facility.url}/hub/spawn", timeout=10).text
    assert "RAPIDS on an NVIDIA T4" in form
    assert "1 &times; T4 GPU" in form
    assert "CVMFS: atlas.cern.ch, atlas-condb.cern.ch, sft.cern.ch" in form
    assert "GPU nodes start in about 10 minutes." in form
    assert form.count("This demo facility has no Kubernetes cluster attached") == 3


@pytest.mark.parametrize("slug", ["cvmfs", "t4", "p100"])
def test_choosing_a_kubernetes_profile_explains_that_no_cluster_is_attached(demo_facility, slug):
    s = login(demo_facility.url, "admin", "demo")
    r = s.post(
        f"{demo_facility.url}/hub/api/users/admin/server",
        json=spawn_body({"profile": slug}, "6"),
        timeout=30,
    )
    assert r.status_code == 400
    assert "This demo facility has no Kubernetes cluster attached" in r.json()["message"]
    assert r.json()["message"].endswith("Pick another profile.")
    model = s.get(f"{demo_facility.url}/hub/api/users/admin", timeout=10).json()
    assert model["servers"] == {} and model["pending"] is None
