"""The interactive view in a real browser: Debian's chromium, headless, driven through
its DevTools protocol (a websocket; no browser download, no driver package).

The page must load and show the readout, moving the red-envelope slider (keyboard:
Home sets it to 0) must change the readout and the drawn curves, and screenshots must
not be blank. Skipped, saying why, where chromium is missing (``.ci/run`` installs it).
"""

import base64
import io
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
READY = "Alipay share of daily users"
WECHAT_DAU = re.compile(r"WeChat daily users \(million\)\s+([\d.]+)")


class Chromium:
    """A headless chromium and one page, spoken to over the DevTools protocol."""

    def __init__(self, binary: str, size=(1400, 1000)):
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="mpsim-chromium-")
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", "--remote-debugging-port=0", "--remote-allow-origins=*",
             f"--user-data-dir={self.profile}", f"--window-size={size[0]},{size[1]}",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        page = None
        while page is None:
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port within 30 s")
            try:
                port = int(port_file.read_text().split()[0])
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as answer:
                    page = next(t for t in json.load(answer) if t["type"] == "page")
            except (OSError, ValueError, IndexError, StopIteration):
                time.sleep(0.1)
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None).__enter__()
        self.ids = itertools.count(1)

    def call(self, method: str, **params):
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for_text(self, predicate, limit: float = 90.0) -> str:
        deadline = time.monotonic() + limit
        while True:
            text = self.js("document.body ? document.body.innerText : ''") or ""
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the page did not get there in {limit:.0f} s; it "
                                     f"shows:\n{text[:1500]}")
            time.sleep(0.3)

    def key(self, key: str, code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key,
                      windowsVirtualKeyCode=code)

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        try:
            self.socket.close()
        except AttributeError:
            pass
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def pixels(png: bytes) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3]


def plot_image(browser: Chromium) -> bytes:
    """A screenshot of the drawn figure (the page's largest image) alone."""
    box = browser.js("(() => { const i = Array.from(document.images).sort((a, b) => "
                     "b.width * b.height - a.width * a.height)[0]; if (!i || !i.complete || "
                     "i.width < 200) return null; const r = i.getBoundingClientRect(); "
                     "return {x: r.x, y: r.y, width: r.width, height: r.height}; })()")
    assert box, "the page shows no plot"
    data = browser.call("Page.captureScreenshot", format="png",
                        clip={**box, "scale": 1}, captureBeyondViewport=True)["data"]
    return base64.b64decode(data)


@pytest.fixture(scope="module")
def server():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does it)")
    pytest.importorskip("websockets", reason="websockets drives chromium (pip install "
                                             "-e '.[test]')")
    from model.app import start_server, stop_server

    process, url = start_server(port=0)
    yield url
    stop_server(process)


@pytest.fixture
def browser():
    page = Chromium(CHROMIUM)
    yield page
    page.close()


def test_the_page_loads_a_lever_moves_the_curves_and_screenshots_are_not_blank(
        server, browser, tmp_path):
    browser.call("Page.enable")
    started = time.monotonic()
    browser.call("Page.navigate", url=server)
    text = browser.wait_for_text(lambda t: READY in t and WECHAT_DAU.search(t))
    loaded = time.monotonic() - started
    before = float(WECHAT_DAU.search(text).group(1))
    curves_before = plot_image(browser)
    shot = browser.screenshot()
    (tmp_path / "app_loaded.png").write_bytes(shot)
    image = pixels(shot)
    assert image.std() > 0.05, "the screenshot is blank"
    assert (image.std(axis=2) > 0.1).mean() > 0.005, "the screenshot has almost no colour"

    # move the red-envelope lever to 0: focus its slider and press Home
    assert "Red envelopes: contagion (x baseline): 1\n" in text
    assert browser.js("document.querySelectorAll('[role=slider]')[0]"
                      ".getAttribute('aria-valuenow')") == "1"
    browser.js("document.querySelectorAll('[role=slider]')[0].focus()")
    browser.key("Home", 36)
    moved = time.monotonic()
    text = browser.wait_for_text(
        lambda t: WECHAT_DAU.search(t) and float(WECHAT_DAU.search(t).group(1)) != before)
    redrawn = time.monotonic() - moved
    after = float(WECHAT_DAU.search(text).group(1))
    assert "red_envelope.strength = 0.0" in text
    assert "Red envelopes: contagion (x baseline): 0\n" in text
    assert after < before - 5, (before, after)  # no red envelopes: fewer WeChat daily users
    curves_after = plot_image(browser)
    a, b = pixels(curves_before), pixels(curves_after)
    assert a.shape == b.shape and np.abs(a - b).max(axis=2).mean() > 0.001, \
        "the curves did not move"
    shot = browser.screenshot()
    (tmp_path / "app_moved.png").write_bytes(shot)
    assert pixels(shot).std() > 0.05
    print(f"loaded in {loaded:.1f} s; the lever redrew in {redrawn:.1f} s "
          f"(WeChat daily users, end of 2020: {before} -> {after} million)")


def test_the_address_sets_the_scenario_and_a_lever(server, browser):
    browser.call("Page.enable")
    browser.call("Page.navigate", url=server + "?scenario=no_red_envelope&wufu.activity_lift=2")
    text = browser.wait_for_text(lambda t: READY in t and WECHAT_DAU.search(t))
    assert "no_red_envelope" in text and "Wufu: campaign-week lift (log-odds): 2\n" in text
    assert "wufu.activity_lift = 2.0" in text
    # the readout's header row is followed by WeChat daily users: this view, baseline
    values = re.search(r"WeChat daily users \(million\)\s+([\d.]+)\s+([\d.]+)", text)
    assert float(values.group(1)) < float(values.group(2)) - 5  # no red envelopes
