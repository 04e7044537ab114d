"""The demo in a real browser: alice reaches JupyterLab; carol sees why she cannot."""

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]


async def sign_in(page, url, username):
    await page.goto(f"{url}/hub/login")
    await page.fill("#username_input", username)
    await page.fill("#password_input", "demo")
    await page.click("#login_submit")


async def test_alice_signs_in_and_sees_the_jupyterlab_launcher(demo_facility, page, artifacts_dir):
    await sign_in(page, demo_facility.url, "alice")
    # the hub's home page starts her server on the first visit (or on "Start My Server")
    await page.wait_for_url("**/hub/**", timeout=30_000)
    if "/user/alice/" not in page.url:
        await page.goto(f"{demo_facility.url}/hub/spawn")
    # the profile form preselects her default profile; she only presses Start
    if await page.locator("#spawn_form").count():
        assert await page.locator("#profile-default").is_checked()
        await page.click("#spawn_form button[type=submit]")
    await page.wait_for_selector(".jp-Launcher", timeout=120_000)
    assert page.url.startswith(f"{demo_facility.url}/user/alice/lab")
    assert (await page.title()).endswith("JupyterLab")
    await page.screenshot(path=str(artifacts_dir / "demo-alice-jupyterlab.png"))


async def test_carol_sees_a_page_that_says_why(demo_facility, page, artifacts_dir):
    await sign_in(page, demo_facility.url, "carol")
    error = page.locator(".login_error")
    await error.wait_for(timeout=30_000)
    text = await error.inner_text()
    assert text.startswith("Your account is not a member of any virtual organisation (VO)")
    assert "Ask your experiment's VO administrator" in text
    assert "/hub/login" in page.url
    await page.screenshot(path=str(artifacts_dir / "demo-carol-refused.png"))
