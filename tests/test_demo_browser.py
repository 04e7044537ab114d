"""The demo in a real browser: alice reaches JupyterLab; carol sees why she cannot."""

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def sign_in(page, url, username):
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", username)
    page.fill("#password_input", "demo")
    page.click("#login_submit")


def test_alice_signs_in_and_sees_the_jupyterlab_launcher(demo_facility, page, artifacts_dir):
    sign_in(page, demo_facility.url, "alice")
    # the hub's home page starts her server on the first visit (or on "Start My Server")
    page.wait_for_url("**/hub/**", timeout=30_000)
    if "/user/alice/" not in page.url:
        page.goto(f"{demo_facility.url}/hub/spawn")
    # the profile form preselects her default profile; she only presses Start
    if page.locator("#spawn_form").count():
        assert page.locator("#profile-default").is_checked()
        page.click("#spawn_form button[type=submit]")
    page.wait_for_selector(".jp-Launcher", timeout=120_000)
    assert page.url.startswith(f"{demo_facility.url}/user/alice/lab")
    assert page.title().endswith("JupyterLab")
    page.screenshot(path=str(artifacts_dir / "demo-alice-jupyterlab.png"))


def test_carol_sees_a_page_that_says_why(demo_facility, page, artifacts_dir):
    sign_in(page, demo_facility.url, "carol")
    error = page.locator(".login_error")
    error.wait_for(timeout=30_000)
    text = error.inner_text()
    assert text.startswith("Your account is not a member of any virtual organisation (VO)")
    assert "Ask your experiment's VO administrator" in text
    assert "/hub/login" in page.url
    page.screenshot(path=str(artifacts_dir / "demo-carol-refused.png"))
