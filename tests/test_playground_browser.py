"""`pyfw playground` end to end, in headless Chromium driven by selenium.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``)
and selenium (``.venv/bin/pip install selenium``). Without them the test skips and says so;
with ``PYFW_REQUIRE_BROWSER=1`` (``.ci/run`` sets it) it fails instead. ``PYFW_CHROMEDRIVER``
names another chromedriver, ``PYFW_CHROMIUM`` another browser.

The test saves a screenshot of the page; ``PYFW_SCREENSHOT=docs/playground.png`` makes it the
README's (run from the repository's root)::

    PYFW_SCREENSHOT=docs/playground.png .venv/bin/python -m pytest -q tests/test_playground_browser.py
"""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import load_backend
from pyfw import cli, io, playground

pytestmark = pytest.mark.slow

HOW = ("the browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver) "
       "and selenium (.venv/bin/pip install selenium)")


def _missing(what: str) -> None:
    """Skip for a missing browser, or fail under PYFW_REQUIRE_BROWSER=1."""
    message = f"{what}: {HOW}"
    if os.environ.get("PYFW_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " (PYFW_REQUIRE_BROWSER=1 makes this an error)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium that records the console."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed")
    driver_path = os.environ.get("PYFW_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    chromium = os.environ.get("PYFW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    for path, name in ((driver_path, "chromedriver"), (chromium, "chromium")):
        if not os.access(path, os.X_OK):
            _missing(f"no {name} at {path}")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,900",
                "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """The playground's server on a free port, with pyfw_rs."""
    srv = playground.make_server("127.0.0.1", 0, load_backend("rs"))
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def wait(what: str, cond: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``cond`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class Page:
    """The page in the browser, read and clicked through its element ids."""

    def __init__(self, driver: Any, url: str) -> None:
        self.d, self.url = driver, url

    def text(self, key: str) -> str:
        return self.d.execute_script("return document.getElementById(arguments[0]).textContent", key)

    def click(self, key: str) -> None:
        self.d.execute_script("document.getElementById(arguments[0]).click()", key)

    def epoch(self) -> int:
        return int(self.text("iter-number").replace(",", ""))

    def pixels(self) -> str:
        """The heatmap canvas, as a data URL."""
        return self.d.execute_script("return document.getElementById('heatmap-canvas').toDataURL()")

    def settled(self, epoch: int) -> bool:
        """The page shows ``epoch``, paused, with its export."""
        if self.epoch() != epoch or "playing" in self.d.find_element("id", "play-pause-button").get_attribute("class"):
            return False
        command = self.text("export-command")
        return f" --epochs {epoch} " in command if epoch else command.startswith("(step or play first")

    def open(self, settings: str) -> None:
        """Load the page with ``settings`` as its hash, and wait for its first run."""
        self.d.get("about:blank")  # a fresh page, not a hash change of the old one
        self.d.get(self.url + "#" + settings)
        wait("the first run", lambda: self.settled(0))

    def steps(self, n: int) -> None:
        """``n`` clicks of "step", each waited for."""
        for _ in range(n):
            before = self.epoch()
            self.click("next-step-button")
            wait(f"epoch {before + 1}", lambda: self.settled(before + 1))

    def errors(self) -> list:
        return [e for e in self.d.get_log("browser") if e["level"] == "SEVERE"]


def test_the_page_in_chromium(browser: Any, server: Any, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    page = Page(browser, f"http://127.0.0.1:{server.server_address[1]}/")

    # "play" on circle lowers the shown test loss below 0.05, and the heatmap changes
    page.open("dataset=circle&seed=1")
    start, pixels = float(page.text("loss-test")), page.pixels()
    assert start > 0.1
    page.click("play-pause-button")
    wait("a test loss below 0.05", lambda: float(page.text("loss-test")) < 0.05, timeout=60)
    page.click("play-pause-button")
    wait("the pause", lambda: page.epoch() > 0 and page.settled(page.epoch()))
    assert page.pixels() != pixels
    assert page.d.execute_script("return location.hash").startswith("#dataset=circle&")

    # another data set, then the first hash again: the same run, bit for bit
    page.open("dataset=xor&seed=5&noise=10&networkShape=5,3&activation=relu")
    page.steps(4)
    first = (page.text("loss-train"), page.text("loss-test"), page.pixels())
    page.click("data-regen-button")  # a new seed and a rebuilt run
    wait("the new seed", lambda: page.text("seed-value") != "5" and page.settled(0))
    page.d.execute_script("document.querySelector('.dataset[data-name=\"gauss\"]').click()")
    wait("gauss", lambda: "dataset=gauss" in page.d.execute_script("return location.hash") and page.settled(0))
    page.d.execute_script("location.hash = arguments[0]", "dataset=xor&seed=5&noise=10&networkShape=5,3&activation=relu")
    wait("the xor run again", lambda: page.text("seed-value") == "5" and page.settled(0))
    page.steps(4)
    assert (page.text("loss-train"), page.text("loss-test"), page.pixels()) == first

    # export on a regression run: a model file that load_model opens, and a command that writes
    # the same file and reports the losses the page shows
    page.open("problem=regression&regDataset=reg-gauss&seed=3&networkShape=6&regularization=L2"
              "&regularizationRate=0.001&learningRate=0.01")
    page.steps(3)
    href = browser.find_element("id", "export-model").get_attribute("href")
    data = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => {"
        "  let s = ''; for (const c of new Uint8Array(b)) s += String.fromCharCode(c); done(btoa(s)); });", href)
    model_bytes = base64.b64decode(data)
    (tmp_path / "page.safetensors").write_bytes(model_bytes)
    assert io.load_model(tmp_path / "page.safetensors") is not None
    argv = shlex.split(page.text("export-command"))
    assert argv[:2] == ["pyfw", "train"]
    argv[argv.index("model.safetensors")] = str(tmp_path / "cli.safetensors")
    capsys.readouterr()
    assert cli.main(argv[1:] + ["--backend", "rs"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "cli.safetensors").read_bytes() == model_bytes
    words = out.split()
    shown = {"train": page.text("loss-train"), "test": page.text("loss-test")}
    for split in ("train", "test"):
        at = next(i for i, w in enumerate(words) if w == split and words[i + 1] == "loss")
        assert f"{float(words[at + 2]):.3f}" == shown[split], (out, shown)

    # the screenshot: a three-arm spiral, trained with the features and the "best" preset's network
    page.open("dataset=spiral&classes=3&seed=2&networkShape=8,8&xSquared=true&ySquared=true&xTimesY=true"
              "&sinX=true&sinY=true&optimizer=adam&learningRate=0.01&loss=crossentropy&showTestData=true")
    page.steps(1)
    page.click("play-pause-button")
    wait("a trained spiral", lambda: page.epoch() >= 300, timeout=60)
    page.click("play-pause-button")
    wait("the pause", lambda: page.settled(page.epoch()))
    shot = Path(os.environ.get("PYFW_SCREENSHOT") or tmp_path / "playground.png")
    assert browser.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert page.errors() == []
