"""The operator console in a real browser (Debian's Chromium driven by Playwright) against a real
controller and simulated terminals: log in, compose, preview, two-person approval, the live board to
N/N played, stop, a refused self-approval, the forced password change, and the 375-px phone layout.

Needs /usr/bin/chromium and fonts-wqy-microhei (scripts/install-browser.sh). Screenshots go to
test-artifacts/console/.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from broadcast.security.roles import Role
from tests.console.conftest import PASSWORD, STREET, ConsoleCounty
from tests.helpers.poll import wait_until

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
WAIT_MS = 20_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium missing: run scripts/install-browser.sh"
)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def open_page(
    browser: Browser, url: str, *, width: int = 1280, height: int = 900
) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    await page.goto(url + "/")
    return page


async def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    await page.fill("#login-user", username)
    await page.fill("#login-pass", password)
    await page.click("#login-submit")


async def compose_and_submit(page: Page, title: str, area: str = STREET) -> int:
    await page.goto(page.url.split("#")[0] + "#/compose")
    await page.wait_for_selector("#compose-form")
    await page.check(f"#area-tree input[data-code='{area}']")
    await page.fill("#title", title)
    await page.click("#submit-btn")
    text = await page.inner_text("#submitted")
    found = re.search(r"编号 (\d+)", text)
    assert found, text
    return int(found.group(1))


async def approve_on_pending(page: Page, bid: int) -> None:
    await page.goto(page.url.split("#")[0] + "#/pending")
    await page.click(f".pending-item[data-id='{bid}'] button[data-act='approve']")


COUNTY = "530181000000"


async def test_compose_approve_watch_stop_and_self_approval(whole_county: ConsoleCounty) -> None:
    county = whole_county
    await county.account("zhang.san", Role.OPERATOR)
    await county.account("li.si", Role.APPROVER)
    await county.account("wang.wu", Role.OPERATOR, Role.APPROVER)
    n = county.terminals
    async with chromium() as browser:
        # Operator: log in, compose from the template, preview the audio, submit.
        op = await open_page(browser, county.url)
        await log_in(op, "zhang.san")
        await op.wait_for_selector("#compose-form")
        await op.check(f"#area-tree input[data-code='{COUNTY}']")
        assert "安宁市" in await op.inner_text("#area-summary")
        assert (await op.input_value("#title")).endswith("预警")  # filled from the template
        await op.click("#preview-btn")
        audio = await op.wait_for_selector("#preview-audio")
        assert audio is not None
        src = await audio.get_attribute("src")
        assert src is not None and re.fullmatch(r"/audio/[0-9a-f]{64}\.mp3", src)
        await op.screenshot(path=str(ARTIFACTS / "compose-desktop.png"), full_page=True)
        await op.click("#submit-btn")
        found = re.search(r"编号 (\d+)", await op.inner_text("#submitted"))
        assert found
        bid = int(found.group(1))

        # Approver (another person): approve on the pending list, then watch the board fill in.
        ap = await open_page(browser, county.url)
        await log_in(ap, "li.si")
        await ap.wait_for_selector("#nav a[data-view='pending']")
        await approve_on_pending(ap, bid)
        await ap.wait_for_selector(f"#coverage[data-played='{n}'][data-targeted='{n}']")
        await ap.wait_for_selector("#board-state[data-state='completed']")
        assert f"已播完 {n}/{n}" in await ap.inner_text("#coverage")
        assert "100.0%" in await ap.inner_text("#street-table")
        assert await ap.locator("#cells .s-played").count() == n
        await ap.screenshot(path=str(ARTIFACTS / "board-completed.png"), full_page=True)
        api_view = await county.broadcast_json(bid)
        assert api_view["state"] == "completed" and api_view["coverage"]["played"] == n

        # Someone holding both roles composes, then tries to approve their own message: refused.
        ww = await open_page(browser, county.url)
        await log_in(ww, "wang.wu")
        await ww.wait_for_selector("#compose-form")
        own = await compose_and_submit(ww, "双人审核测试预警")
        await approve_on_pending(ww, own)
        flash = ww.locator("#flash")
        await flash.wait_for(state="visible")
        assert "审核人不能是编写人本人" in await flash.inner_text()
        await ww.screenshot(path=str(ARTIFACTS / "self-approval-refused.png"), full_page=True)
        assert (await county.broadcast_json(own))["state"] == "pending_approval"

        # Stop: terminals now play in real time, so the broadcast is still on air when stopped.
        for t in county.fleet.terminals:
            t.time_scale = 1.0
        await approve_on_pending(ap, own)
        await ap.wait_for_selector("#tiles [data-status='playing'] b:not(:text-is('0'))")
        await ap.click("#stop-btn")
        await ap.wait_for_selector("#confirm[open]")
        assert "停止播发" in await ap.inner_text("#confirm-text")
        await ap.click("#confirm-ok")
        await ap.wait_for_selector("#board-state[data-state='cancelled']")
        await ap.screenshot(path=str(ARTIFACTS / "board-stopped.png"), full_page=True)

        async def stopped() -> dict[str, int]:
            counts: dict[str, int] = (await county.broadcast_json(own))["counts"]
            return counts

        counts = await wait_until(stopped, lambda c: c["playing"] == 0 and c["cancelled"] > 0, within=10)
        assert counts["played"] < n  # stopped mid-air: not everyone heard it to the end
        # The board follows over the live stream (coalesced every 200 ms): wait for it, do not race it.
        await ap.locator("#board-body").get_by_text("已停止/取消").first.wait_for()

        # The other views render live data.
        base = ap.url.split("#")[0]
        await ap.goto(base + "#/broadcasts")
        await ap.wait_for_selector("#broadcasts-table tr[data-id]")
        assert await ap.locator("#broadcasts-table tr[data-id]").count() == 2
        await ap.goto(base + "#/terminals")
        await ap.wait_for_selector("#t-table")
        await ap.select_option("#t-area", STREET)
        street_n = len(county.controller.inventory.resolve([STREET]))
        assert await ap.locator("#t-table tr[data-code]").count() == street_n
        assert f"在线 {n}" in await ap.inner_text("#t-summary")  # the county summary
        await ap.screenshot(path=str(ARTIFACTS / "terminals.png"), full_page=True)
        await ap.goto(base + "#/sources")
        await ap.wait_for_selector("#adapters-table")
        assert "ip_speaker" in await ap.inner_text("#adapters-table")


async def test_forced_password_change_then_phone_layout(county: ConsoleCounty) -> None:
    one_time = await county.account("zhao.liu", Role.OPERATOR, password=None)
    assert one_time is not None
    async with chromium() as browser:
        page = await open_page(browser, county.url, width=375, height=740)
        await log_in(page, "zhao.liu", one_time)
        await page.wait_for_selector("#pw-form")
        assert "首次登录" in await page.inner_text("#pw-form h1")
        await page.fill("#pw-new", "short")
        await page.fill("#pw-again", "short")
        await page.click("#pw-submit")
        err = page.locator("#pw-error")
        await err.wait_for(state="visible")
        assert "至少" in await err.inner_text()  # the server's policy message, in Chinese
        await page.fill("#pw-new", "a-brand-new-passphrase-7")
        await page.fill("#pw-again", "a-brand-new-passphrase-7")
        await page.click("#pw-submit")
        await page.wait_for_selector("#compose-form")
        await page.screenshot(path=str(ARTIFACTS / "compose-375px.png"), full_page=True)
        widths = await page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1] == 375, widths
        for sel in ("#compose-form", "#area-tree", "#title", "#text", "#compose-actions"):
            box = await page.locator(sel).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, (sel, box)
        # The new password works; the one-time one no longer does.
        fresh = await open_page(browser, county.url, width=375, height=740)
        await fresh.wait_for_selector("#login-form")
        assert await fresh.locator("#login-error").is_hidden()  # no session yet: no error either
        await log_in(fresh, "zhao.liu", one_time)
        await fresh.locator("#login-error", has_text="用户名或密码错误").wait_for()
        await log_in(fresh, "zhao.liu", "a-brand-new-passphrase-7")
        await fresh.wait_for_selector("#compose-form")
