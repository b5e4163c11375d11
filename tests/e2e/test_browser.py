"""The demo in a real browser: headless Chromium against ``flask run``.

What only a browser shows: the cookies it really keeps on plain
``http://127.0.0.1``, the Back button after sign-out, the cross-tab script,
and two devices ending each other's sessions.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.browser import page_text, submit, wait_for_path

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct horse battery"
_names = itertools.count(1)

NewBrowser = Callable[[], "WebDriver"]


def register(driver: WebDriver, base: str) -> str:
    username = f"user{next(_names)}"
    driver.get(f"{base}/register")
    submit(driver, {"username": username, "password": PASSWORD}, "main button")
    wait_for_path(driver, "/login")
    return username


def sign_in(driver: WebDriver, base: str, username: str, query: str = "") -> None:
    driver.get(f"{base}/login{query}")
    submit(driver, {"username": username, "password": PASSWORD}, "main button")
    wait_for_path(driver, "/")


def test_sign_in_and_out_then_back_shows_nothing_private(
    demo_server: str, new_browser: NewBrowser
) -> None:
    from selenium.webdriver.common.by import By

    driver = new_browser()
    username = register(driver, demo_server)
    sign_in(driver, demo_server, username)
    assert f"Signed in as {username}" in page_text(driver)
    # Plain http on loopback: the cookie is kept, HttpOnly, SameSite=Lax.
    cookies = {c["name"]: c for c in driver.get_cookies()}
    assert cookies["session"]["httpOnly"] is True
    assert cookies["session"]["sameSite"] == "Lax"
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "home.png"))
    driver.get(f"{demo_server}/sessions")
    assert "(this device)" in page_text(driver)
    driver.save_screenshot(str(ARTIFACTS / "sessions.png"))

    driver.get(f"{demo_server}/logout")
    assert "Sign out of this browser" in page_text(driver)
    driver.find_element(By.ID, "confirm-sign-out").click()
    wait_for_path(driver, "/login")
    assert "session" not in {c["name"] for c in driver.get_cookies()}

    # Back through the history: every private page is asked for again and
    # sends the browser to the login page; nothing private comes from a cache.
    for _ in range(3):
        driver.back()
        text = page_text(driver)
        assert username not in text
        assert "Signed in as" not in text
        assert "(this device)" not in text
    wait_for_path(driver, "/login")


def test_sign_out_in_one_tab_ends_the_others(
    demo_server: str, new_browser: NewBrowser
) -> None:
    from selenium.webdriver.common.by import By

    driver = new_browser()
    username = register(driver, demo_server)
    sign_in(driver, demo_server, username)
    first = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(f"{demo_server}/sessions")
    assert "(this device)" in page_text(driver)
    driver.find_element(By.CSS_SELECTOR, "[data-testid=sign-out]").click()
    wait_for_path(driver, "/login")
    # The first tab leaves by itself: no reload, no click.
    driver.switch_to.window(first)
    wait_for_path(driver, "/login")
    assert username not in page_text(driver)


def test_next_pointing_off_site_lands_home(
    demo_server: str, new_browser: NewBrowser
) -> None:
    driver = new_browser()
    username = register(driver, demo_server)
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        driver.delete_all_cookies()
        sign_in(driver, demo_server, username, f"?next={target}")
        assert driver.current_url == f"{demo_server}/"


def test_revoking_another_device_sends_it_to_login(
    demo_server: str, new_browser: NewBrowser
) -> None:
    from selenium.webdriver.common.by import By

    laptop, phone = new_browser(), new_browser()
    username = register(laptop, demo_server)
    sign_in(laptop, demo_server, username)
    sign_in(phone, demo_server, username)

    laptop.get(f"{demo_server}/sessions")
    rows = laptop.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 2
    other = next(r for r in rows if "current" not in (r.get_attribute("class") or ""))
    other.find_element(By.CSS_SELECTOR, "button").click()
    wait_for_path(laptop, "/sessions")
    assert len(laptop.find_elements(By.CSS_SELECTOR, "tbody tr")) == 1

    phone.refresh()
    wait_for_path(phone, "/login")
    assert username not in page_text(phone)
