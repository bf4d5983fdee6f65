"""Headless Chromium (Debian's chromium + chromium-driver) for the browser tests."""

from __future__ import annotations

import io

from PIL import Image

from slicerhub.wait import wait_for  # noqa: F401 (the tests import it from here)
from tests.support.hub import ROOT

ARTIFACTS = ROOT / "artifacts" / "screenshots"


def browser(width: int = 1280, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def page_picture(driver, name: str) -> Image.Image:
    """Screenshot the page, keep it under artifacts/screenshots/, return it."""
    png = driver.get_screenshot_as_png()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_bytes(png)
    return Image.open(io.BytesIO(png)).convert("RGB")


def hub_login(driver, hub, user: str, password: str) -> None:
    """Log in through the hub's LDAP form and wait for the user's server."""
    driver.get(hub.url + "/hub/login")
    driver.find_element("id", "username_input").send_keys(user)
    driver.find_element("id", "password_input").send_keys(password)
    driver.find_element("id", "login_submit").click()
    wait_for(lambda: f"/user/{user}/" in driver.current_url, 120, what="the user's server")
