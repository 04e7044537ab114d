"""The facility panel in Chromium, as alice uses it, against a real hub, af-accounting,
dask-gateway-server and Rucio: open the panel; create a cluster, scale it (and past her
quota: the reason is shown), insert the client code, stop it; read her usage; search
Rucio, see a DID named with HTML shown as text, open container -> dataset -> files,
see replicas and insert a snippet. Screenshots go to test-artifacts/ (and to
docs/images/ with JHUB_AF_DOC_IMAGES=1)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import pytest
from harness import free_port, login, user_token
from harness.gateway_hub import gateway_hub_text, wait_for_gateway
from harness.hub import REPO
from playwright.async_api import TimeoutError as PlaywrightTimeout

from jhub_af.lab.dask.gateway import GATEWAY_DOWN
from jhub_af.lab.usage import ACCOUNTING_DOWN

pytestmark = [pytest.mark.integration, pytest.mark.browser]

DOC_IMAGES = REPO / "docs" / "images"
BUTTON = "#jhub-af-panel [data-action={}]"
DASH = "\N{EN DASH}"  # as the panel writes ranges: "Items 1-50" with an en dash


@pytest.fixture(scope="module")
def panel_site(hub_factory, tmp_path_factory, rucio_server):
    workdir = tmp_path_factory.mktemp("panel-browser")
    config_dir, down_dir = workdir / "lab-config", workdir / "lab-config-down"
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: erin's gateway, usage, Rucio
    for path, config in (
        (config_dir, rucio_server.lab_config()),
        (down_dir, rucio_server.lab_config(rucio_server.instance("test", url=dead))),
    ):
        path.mkdir()
        (path / "jupyter_server_config.json").write_text(json.dumps(config))
    port, tcp_port = free_port(), free_port()
    extra = f"""
from jhub_af.lab import usage_hub_config
add_roles(c, usage_hub_config(c))
_env = dict(c.Spawner.environment, JUPYTER_CONFIG_PATH={str(config_dir)!r})
_down = {{
    "DASK_GATEWAY__ADDRESS": "{dead}/services/dask-gateway",
    "JHUB_AF_ACCOUNTING_URL": "{dead}/services/af-accounting/api/v1/",
    "JUPYTER_CONFIG_PATH": {str(down_dir)!r},
}}
def _for(key):
    return lambda spawner: _down[key] if spawner.user.name == "erin" else _env[key]
c.Spawner.environment = dict(_env, **{{key: _for(key) for key in _down}})
"""
    hub = hub_factory(gateway_hub_text(workdir, port, tcp_port) + extra, port=port)
    wait_for_gateway(hub.url, user_token(login(hub.url, "alice", "demo"), hub.url, "alice"))
    return {"url": hub.url, "rucio": rucio_server, "home": workdir / "home" / "alice"}


async def open_panel(chromium, url: str, user: str):
    """``user``'s JupyterLab with the panel open; dialogs (there must be none) recorded."""
    context = await chromium.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    await page.goto(f"{url}/hub/login")
    await page.fill("#username_input", user)
    await page.fill("#password_input", "demo")
    await page.click("#login_submit")
    await page.wait_for_url("**/hub/**", timeout=30_000)
    if f"/user/{user}/" not in page.url:
        await page.goto(f"{url}/hub/spawn")
    await page.wait_for_selector(".jp-Launcher", timeout=180_000)
    await page.click('.jp-SideBar .lm-TabBar-tab[data-id="jhub-af-panel"]')
    # JupyterLab asks about its news feed in a toast: answer it, for clean screenshots
    with contextlib.suppress(PlaywrightTimeout):
        await page.get_by_role("button", name="No", exact=True).click(timeout=5_000)
    await page.wait_for_selector("#jhub-af-panel", state="visible")
    return context, page, dialogs


@pytest.fixture(scope="module")
async def lab(panel_site, chromium):
    """alice's JupyterLab with the panel open, one page for the module's tests in order."""
    context, page, dialogs = await open_panel(chromium, panel_site["url"], "alice")
    yield page, dialogs
    await context.close()


async def shoot(page, artifacts_dir: Path, name: str, selector: str | None = None) -> None:
    path = artifacts_dir / name
    target = page.locator(selector) if selector else page
    await target.screenshot(path=str(path))
    if os.environ.get("JHUB_AF_DOC_IMAGES"):
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOC_IMAGES / name)


async def panel_tab(page, label: str) -> None:
    await page.click(f'#jhub-af-panel > .lm-TabBar .lm-TabBar-tab:has-text("{label}")')


async def notebook_cell_with(page, text: str) -> str:
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .cm-content", has_text=text)
    await cell.first.wait_for(timeout=60_000)
    return await cell.first.inner_text()


async def test_dask_tab_create_scale_capped_insert_stop(lab, artifacts_dir):
    page, dialogs = lab
    await panel_tab(page, "Dask")
    await page.click(BUTTON.format("new-cluster"))
    cores = page.locator("#jhub-af-panel input[name=worker_cores]")
    # the form carries the gateway's bounds for alice (/atlas/users: 1 to 2 cores)
    assert await cores.get_attribute("max") == "2"
    await cores.fill("1")
    await page.click(BUTTON.format("create"))
    card = page.locator("#jhub-af-panel .jaf-card.jaf-status-running")
    await card.wait_for(timeout=120_000)

    await card.locator("input[name=scale-n]").fill("1")
    await card.locator("[data-action=scale]").click()
    await page.locator("#jhub-af-panel .jaf-card .jaf-facts", has_text="Workers 1 ").wait_for(
        timeout=120_000
    )
    await shoot(page, artifacts_dir, "panel-dask.png", "#jhub-af-panel")

    # her quota is 2 workers: asking for 10 is capped, and the panel says why
    card = page.locator("#jhub-af-panel .jaf-card")
    await card.locator("input[name=scale-n]").fill("10")
    await card.locator("[data-action=scale]").click()
    warning = page.locator("#jhub-af-panel .jaf-card .jaf-message-warning")
    await warning.wait_for(timeout=60_000)
    assert "exceeds your Dask quota" in await warning.inner_text()
    await shoot(page, artifacts_dir, "panel-dask-capped.png", "#jhub-af-panel")

    name = await page.locator("#jhub-af-panel .jaf-card").get_attribute("data-cluster")
    # the dashboard opens in a JupyterLab tab
    await page.click(BUTTON.format("dashboard"))
    frame = page.locator(f'[id="jhub-af-dashboard-{name}"] iframe')
    await frame.wait_for(timeout=30_000)
    assert (await frame.get_attribute("src")).endswith(
        f"/services/dask-gateway/clusters/{name}/status"
    )

    await page.click(BUTTON.format("insert-client"))
    code = await notebook_cell_with(page, "Gateway().connect(")
    assert f'client = Gateway().connect("{name}").get_client()' in code
    assert "from dask_gateway import Gateway" in code
    await shoot(page, artifacts_dir, "panel-lab.png")

    await panel_tab(page, "Dask")
    await page.click(BUTTON.format("stop"))
    await page.locator("#jhub-af-panel .jaf-card").wait_for(state="detached", timeout=120_000)
    assert dialogs == []


async def test_usage_tab_shows_my_quotas_as_a_chart(lab, artifacts_dir):
    page, _ = lab
    await panel_tab(page, "Usage")
    await page.locator("#jhub-af-panel svg.jaf-chart").wait_for(timeout=60_000)
    assert await page.locator('#jhub-af-panel [data-total="core_hours"]').count() == 1
    bars = page.locator("#jhub-af-panel svg.jaf-chart rect.jaf-chart-bar")
    quotas = {await b.get_attribute("data-quota") for b in await bars.all()}
    assert {"servers", "cores", "dask_workers"} <= quotas
    await shoot(page, artifacts_dir, "panel-usage.png", "#jhub-af-panel")


async def test_data_tab_search_html_name_navigate_and_snippet(lab, panel_site, artifacts_dir):
    page, dialogs = lab
    rucio = panel_site["rucio"]
    await panel_tab(page, "Data")
    await page.locator("#jhub-af-panel select[name=instance] option[value=test]").wait_for(
        state="attached", timeout=60_000
    )
    await page.fill("#jhub-af-panel input[name=scope]", rucio.scope)
    await page.fill("#jhub-af-panel input[name=pattern]", "*")
    await page.select_option("#jhub-af-panel select[name=type]", "dataset")
    await page.click(BUTTON.format("search"))
    rows = page.locator("#jhub-af-panel .jaf-did")
    try:
        await rows.first.wait_for(timeout=60_000)
    except Exception:
        await page.screenshot(path=str(artifacts_dir / "panel-data-failure.png"))
        raise AssertionError(await page.locator("#jhub-af-panel .jaf-data").inner_text()) from None

    # the dataset named with HTML is shown as its text; nothing of it became markup
    html = page.locator(f'#jhub-af-panel .jaf-did[data-did="{rucio.scope}:{rucio.html_name}"]')
    assert await html.locator(".jaf-name").inner_text() == rucio.html_name
    assert await page.locator("#jhub-af-panel .jaf-dids svg").count() == 0
    assert dialogs == []

    # container -> dataset -> files with their replicas
    await page.select_option("#jhub-af-panel select[name=type]", "container")
    await page.click(BUTTON.format("search"))
    await page.click(f'#jhub-af-panel .jaf-did[data-did="{rucio.scope}:{rucio.container}"] a')
    dataset = next(iter(rucio.datasets))
    await page.click(f'#jhub-af-panel .jaf-did[data-did="{rucio.scope}:{dataset}"] a')
    first = rucio.datasets[dataset][0]["name"]
    row = page.locator(f'#jhub-af-panel .jaf-did[data-did="{rucio.scope}:{first}"]')
    await row.wait_for(timeout=60_000)
    assert "1,000 events" in await row.locator(".jaf-facts").inner_text()
    await row.locator("[data-action=replicas]").click()
    await row.locator(".jaf-replica").first.wait_for(timeout=60_000)
    rses = {await r.get_attribute("data-rse") for r in await row.locator(".jaf-replica").all()}
    assert rucio.rse_web in rses
    await shoot(page, artifacts_dir, "panel-data.png", "#jhub-af-panel")

    https = row.locator(f'.jaf-replica[data-rse="{rucio.rse_web}"] .jaf-pfn').first
    pfn = await https.locator("code").inner_text()
    assert pfn.startswith("https://127.0.0.1:")
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await https.locator("[data-action=copy-pfn]").click()
    assert await page.evaluate("navigator.clipboard.readText()") == pfn

    await https.locator("[data-action=insert-snippet]").click()
    code = await notebook_cell_with(page, "import uproot")
    assert f"{rucio.scope}:{first}" in code

    # download into her home, with progress, and a target outside it refused
    await panel_tab(page, "Data")
    message = row.locator(".jaf-details > .jaf-message")

    # the facility allows replica requests to SITE_SCRATCH: a rule is made
    await row.locator("select[name=rse]").select_option(rucio.rse_dest)
    await row.locator("[data-action=request-replica]").click()
    await message.filter(has_text="Replica requested").wait_for(timeout=60_000)
    assert (await message.inner_text()).startswith(f"Replica requested at {rucio.rse_dest} (rule ")

    target = row.locator("input[name=target]")
    await target.fill("../outside.root")
    await https.locator("[data-action=download]").click()
    await message.filter(has_text="..").wait_for(timeout=30_000)
    assert await message.inner_text() == (
        'The target must stay inside your home: ".." is not allowed.'
    )
    await target.fill("panel/ttbar.root")
    await https.locator("[data-action=download]").click()
    await message.filter(has_text="Downloaded to").wait_for(timeout=60_000)
    assert await message.inner_text() == "Downloaded to panel/ttbar.root."
    size = rucio.datasets[dataset][0]["bytes"]
    assert (panel_site["home"] / "panel" / "ttbar.root").stat().st_size == size
    assert not (panel_site["home"].parent / "outside.root").exists()
    assert dialogs == []


async def test_data_tab_pages_through_a_large_dataset(lab, panel_site, artifacts_dir):
    page, _ = lab
    rucio = panel_site["rucio"]
    await panel_tab(page, "Data")
    await page.fill("#jhub-af-panel input[name=scope]", rucio.scope)
    await page.fill("#jhub-af-panel input[name=pattern]", rucio.big_name)
    await page.select_option("#jhub-af-panel select[name=type]", "dataset")
    await page.click(BUTTON.format("search"))
    await page.click(f'#jhub-af-panel .jaf-did[data-did="{rucio.scope}:{rucio.big_name}"] a')
    label = page.locator("#jhub-af-panel .jaf-page-label")
    await label.filter(has_text=f"Items 1{DASH}50").wait_for(timeout=60_000)
    assert await page.locator("#jhub-af-panel .jaf-did").count() == 50
    await page.click(BUTTON.format("next-page"))
    await label.filter(has_text=f"Items 51{DASH}100").wait_for(timeout=60_000)
    names = await page.locator("#jhub-af-panel .jaf-did .jaf-name").all_inner_texts()
    assert len(names) == 50 and len(set(names)) == 50
    await page.click(BUTTON.format("prev-page"))
    await label.filter(has_text=f"Items 1{DASH}50").wait_for(timeout=60_000)
    assert await page.locator(BUTTON.format("prev-page")).is_disabled()
    await shoot(page, artifacts_dir, "panel-data-paging.png", "#jhub-af-panel")


async def test_gateway_usage_and_rucio_down_are_said_plainly(panel_site, chromium, artifacts_dir):
    context, page, dialogs = await open_panel(chromium, panel_site["url"], "erin")
    try:
        message = page.locator("#jhub-af-panel .lm-Widget:not(.lm-mod-hidden) > .jaf-message")
        await message.filter(has_text="Dask Gateway").wait_for(timeout=60_000)
        assert await message.inner_text() == GATEWAY_DOWN
        assert "jaf-message-error" in await message.get_attribute("class")
        await shoot(page, artifacts_dir, "panel-gateway-down.png", "#jhub-af-panel")

        await panel_tab(page, "Usage")
        await message.filter(has_text="af-accounting").wait_for(timeout=60_000)
        assert await message.inner_text() == ACCOUNTING_DOWN

        await panel_tab(page, "Data")
        await page.fill("#jhub-af-panel input[name=scope]", "mc23")
        await page.click(BUTTON.format("search"))
        await message.filter(has_text="does not answer").wait_for(timeout=60_000)
        assert (await message.inner_text()).startswith("The Rucio server 'test' (http://127.0.0.1:")
        assert dialogs == []
    finally:
        await context.close()
