"""Single sign-out with an OpenID Connect provider, in headless Chromium.

The demo runs under ``flask run`` and signs in through panva's
``oidc-provider`` (the ``oidc_demo`` fixture), both on 127.0.0.1: the
browser fills the provider's own sign-in form, and the provider's
back-channel logout calls reach the demo over a real socket.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from tests.support.browser import page_text, submit, wait_for_path
from tests.support.oidc_demo import ACCOUNTS, OIDCDemo, api_me

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NewBrowser = Callable[[], "WebDriver"]


def at_provider(driver: WebDriver, demo: OIDCDemo, path: str) -> bool:
    url = urlsplit(driver.current_url)
    return f"{url.scheme}://{url.netloc}" == demo.issuer and url.path.startswith(path)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(None, timeout, poll_frequency=0.02).until(
        lambda _: check(), message=what
    )


def sign_in(driver: WebDriver, demo: OIDCDemo, username: str) -> None:
    """From the demo's login page, through the provider's sign-in form."""
    from selenium.webdriver.common.by import By

    driver.get(f"{demo.base}/login")
    driver.find_element(By.ID, "oidc-sign-in").click()
    wait_until(
        lambda: at_provider(driver, demo, "/interaction/"),
        f"the provider's sign-in page, not {driver.current_url}",
    )
    fields = {"login": username, "password": ACCOUNTS[username]["password"]}
    submit(driver, fields, "#provider-sign-in")
    wait_for_path(driver, "/", timeout=10)
    assert f"Signed in as {username}" in page_text(driver)


def confirm_provider_sign_out(driver: WebDriver, demo: OIDCDemo) -> None:
    from selenium.webdriver.common.by import By

    wait_until(
        lambda: at_provider(driver, demo, "/session/end"),
        f"the provider's sign-out page, not {driver.current_url}",
    )
    driver.find_element(By.CSS_SELECTOR, "button[name=logout][value=yes]").click()


def test_sign_out_at_the_provider_ends_the_demo_session(
    oidc_demo: OIDCDemo, new_browser: NewBrowser
) -> None:
    driver = new_browser()
    sign_in(driver, oidc_demo, "erin")
    copied = next(c["value"] for c in driver.get_cookies() if c["name"] == "session")
    assert api_me(oidc_demo, copied) == 200

    # The provider's own sign-out page, as a user who leaves from there.
    driver.get(oidc_demo.provider.metadata()["end_session_endpoint"])
    start = time.perf_counter()
    confirm_provider_sign_out(driver, oidc_demo)
    # The copy made before is refused: the back-channel call reached the demo.
    while api_me(oidc_demo, copied) != 401:
        assert time.perf_counter() - start < 10, "the copied cookie still works"
    elapsed = time.perf_counter() - start
    print(f"provider sign-out -> demo session refused: {elapsed * 1000:.0f} ms")
    wait_until(
        lambda: at_provider(driver, oidc_demo, "/session/end/success"),
        f"the provider's signed-out page, not {driver.current_url}",
    )

    # And the browser's own session is dead on its next request.
    driver.get(f"{oidc_demo.base}/")
    wait_for_path(driver, "/login")
    assert "Signed in as" not in page_text(driver)


def test_sign_out_at_the_demo_ends_the_provider_session(
    oidc_demo: OIDCDemo, new_browser: NewBrowser
) -> None:
    from selenium.webdriver.common.by import By

    driver = new_browser()
    sign_in(driver, oidc_demo, "femi")
    copied = next(c["value"] for c in driver.get_cookies() if c["name"] == "session")
    driver.find_element(By.CSS_SELECTOR, "[data-testid=sign-out]").click()
    # Signed out of the demo first, then sent to the provider to confirm.
    confirm_provider_sign_out(driver, oidc_demo)
    assert api_me(oidc_demo, copied) == 401
    wait_for_path(driver, "/login", timeout=10)
    assert driver.find_element(By.ID, "signed-out-at-provider")

    # Signing in again asks for the password: the provider forgot the user.
    driver.find_element(By.ID, "oidc-sign-in").click()
    wait_until(
        lambda: at_provider(driver, oidc_demo, "/interaction/"),
        f"the provider's sign-in page, not {driver.current_url}",
    )
    assert driver.find_element(By.NAME, "password").is_displayed()
