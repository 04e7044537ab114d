"""The profile form in a real browser (the demo facility): cards, and a clear refusal."""

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]


async def test_admin_sees_profile_cards_and_a_kubernetes_profile_explains_itself(
    demo_facility, page, artifacts_dir
):
    await page.goto(f"{demo_facility.url}/hub/login")
    await page.fill("#username_input", "admin")
    await page.fill("#password_input", "demo")
    await page.click("#login_submit")
    await page.goto(f"{demo_facility.url}/hub/spawn")
    cards = page.locator(".jhub-af-profile")
    await cards.first.wait_for(timeout=30_000)
    assert await cards.count() == 4
    assert await page.locator("#profile-default").is_checked()
    await page.screenshot(path=str(artifacts_dir / "profiles-form-admin.png"), full_page=True)

    await page.check("#profile-t4")
    await page.click("#spawn_form button[type=submit]")
    error = page.locator(".spawn-error-msg")
    await error.wait_for(timeout=30_000)
    text = await error.inner_text()
    assert text.startswith("Error: The profile 'RAPIDS on an NVIDIA T4' cannot start here:")
    assert "no Kubernetes cluster attached" in text
    await page.screenshot(path=str(artifacts_dir / "profiles-refused-t4.png"), full_page=True)
