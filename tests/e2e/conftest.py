"""A real demo server and headless Chromium, for the browser tests.

The server is the development command itself (``flask --app examples.demo
run``) on a free loopback port, with a temporary instance folder. Chromium
and chromedriver come from the system (``/usr/bin``); Selenium never
downloads a driver. Without them the tests are skipped, unless
``SIGNOFF_REQUIRE_SERVERS=1`` makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.servers import free_port, missing

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the demo server exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"the demo server did not answer:\n{log.read_text()}")


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of ``flask --app examples.demo run`` on a free port."""
    instance = tmp_path_factory.mktemp("demo-instance")
    log = instance / "server.log"
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env["SIGNOFF_DEMO_INSTANCE_PATH"] = str(instance)
    for key in ("FLASK_SECRET_KEY", "FLASK_SIGNOFF_COOKIE_SECURE", "FLASK_DEBUG"):
        env.pop(key, None)
    command = [sys.executable, "-m", "flask", "--app", "examples.demo", "run"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/login", proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def new_browser() -> Iterator[Callable[[], WebDriver]]:
    """``new_browser()``: a headless Chromium with a fresh profile (a device)."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        missing("chromium or chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium")

    drivers: list[WebDriver] = []
    profiles: list[str] = []

    def new_browser() -> WebDriver:
        profile = tempfile.mkdtemp(prefix="signoff-chromium-")
        profiles.append(profile)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1100,800",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(15)
        drivers.append(driver)
        return driver

    try:
        yield new_browser
    finally:
        for driver in drivers:
            driver.quit()
        for profile in profiles:
            shutil.rmtree(profile, ignore_errors=True)
