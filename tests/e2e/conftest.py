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
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support.servers import flask_demo, missing

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of ``flask --app examples.demo run`` on a free port."""
    with flask_demo(str(tmp_path_factory.mktemp("demo-instance"))) as base:
        yield base


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
