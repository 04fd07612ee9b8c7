"""The console's end-to-end tests: `kepu serve --demo` on a fresh SQLite file, driven by
Playwright through Debian's chromium. Each test checks what the page shows and what the API
then holds. Screenshots go to target/screenshots (not committed)."""

import json
import os
import pathlib
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEPU = os.environ.get("KEPU_BIN", str(ROOT / "target" / "debug" / "kepu"))
CHROMIUM = os.environ.get("KEPU_CHROMIUM", "/usr/bin/chromium")
AXE = os.environ.get("KEPU_AXE", "")
SHOTS = pathlib.Path(os.environ.get("KEPU_SCREENSHOTS", str(ROOT / "target" / "screenshots")))
# The demo accounts share the demo admin's password.
PASSWORD = "kepu-admin"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    tmp = tempfile.mkdtemp(prefix="kepu-e2e-")
    port = free_port()
    # A fresh SQLite file, or the (empty) PostgreSQL database KEPU_E2E_DATABASE_URL names.
    env = {
        **os.environ,
        "DATABASE_URL": os.environ.get("KEPU_E2E_DATABASE_URL") or f"sqlite://{tmp}/kepu.db?mode=rwc",
        "KEPU_ADMIN_PASSWORD": PASSWORD,
        "RUST_LOG": "warn",
    }
    log = open(os.path.join(tmp, "server.log"), "w")
    proc = subprocess.Popen(
        [KEPU, "serve", "--demo", "--bind", f"127.0.0.1:{port}", "--no-webhook-worker"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"kepu did not start: {open(os.path.join(tmp, 'server.log')).read()[-3000:]}")
        time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Api:
    """The API as an account sees it, with a bearer token: to set a scene up and to check
    what a page did."""

    def __init__(self, base: str, username: str | None = None):
        self.base = base
        self.token = None
        if username:
            self.token = self.call("POST", "/v1/auth/token", {"username": username, "password": PASSWORD})["access_token"]

    def call(self, method: str, path: str, body=None, expect: int | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("accept", "application/json")
        if data is not None:
            req.add_header("content-type", "application/json")
        if self.token:
            req.add_header("authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        if expect is not None:
            assert status == expect, f"{method} {path}: {status} {text}"
        elif status >= 400:
            raise AssertionError(f"{method} {path}: {status} {text}")
        return json.loads(text) if text else None


@pytest.fixture
def api(server):
    return lambda username=None: Api(server, username)


LIVE_PAGES = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, each open page's screenshot and text, to see what the user saw."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        SHOTS.mkdir(parents=True, exist_ok=True)
        for i, p in enumerate(LIVE_PAGES):
            try:
                p.screenshot(path=str(SHOTS / f"failed-{item.name}-{i}.png"), full_page=True)
                report.sections.append((f"page {i} ({p.url})", p.locator("main").inner_text()[:3000]))
            except Exception as e:  # a closed page: nothing to show
                report.sections.append((f"page {i}", repr(e)))


def new_page(browser, server, viewport=DESKTOP):
    """A page in a fresh context (its own cookies), in the city's time zone, that records
    script errors."""
    ctx = browser.new_context(base_url=server, locale="zh-CN", timezone_id="Asia/Shanghai", viewport=viewport)
    page = ctx.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.set_default_timeout(15_000)
    LIVE_PAGES.append(page)
    page.on("close", lambda _: LIVE_PAGES.remove(page) if page in LIVE_PAGES else None)
    return page


@pytest.fixture
def page(browser, server):
    p = new_page(browser, server)
    yield p
    errors = p.errors
    p.context.close()
    assert not errors, f"script errors: {errors}"


@pytest.fixture
def open_page(browser, server):
    """Opens further pages (other people at the same time); closed at the end."""
    pages = []

    def make(viewport=DESKTOP):
        p = new_page(browser, server, viewport)
        pages.append(p)
        return p

    yield make
    for p in pages:
        errors = p.errors
        p.context.close()
        assert not errors, f"script errors: {errors}"


def login(page, username: str):
    page.goto("/#/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.get_by_role("button", name="退出登录").wait_for()


def AXE_SOURCE() -> str:
    return pathlib.Path(AXE).read_text() + "\n;window.axe = axe;"


def check_accessibility(page, what: str):
    """axe-core, inside the page: no serious or critical violation."""
    if not AXE:
        pytest.fail("KEPU_AXE must name axe.min.js (from the axe-core npm package)")
    # Evaluated through the DevTools protocol, which the page's content security policy (no
    # inline script) does not apply to; a script tag would be refused, as it should be.
    page.evaluate(AXE_SOURCE())
    result = page.evaluate("async () => await axe.run(document, { resultTypes: ['violations'] })")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{what}: {bad}"


def screenshots(page, name: str):
    """The page at desktop and phone widths."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
