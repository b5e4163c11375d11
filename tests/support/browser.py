"""Steps of the browser tests (``tests/e2e/``), on a Selenium driver."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


def wait_for_path(driver: WebDriver, path: str, timeout: float = 5) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: urlsplit(d.current_url).path == path,
        message=f"expected {path}, still on {driver.current_url}",
    )


def submit(driver: WebDriver, fields: dict[str, str], button: str) -> None:
    from selenium.webdriver.common.by import By

    for name, value in fields.items():
        element = driver.find_element(By.NAME, name)
        element.clear()
        element.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, button).click()


def page_text(driver: WebDriver) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)
