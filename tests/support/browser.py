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


def hub_login(driver, hub, user: str, password: str, next_url: str | None = None) -> None:
    """Log in through the hub's LDAP form; wait for NEXT_URL, or else for the user's server."""
    driver.get(hub.url + "/hub/login" + (f"?next={next_url}" if next_url else ""))
    driver.find_element("id", "username_input").send_keys(user)
    driver.find_element("id", "password_input").send_keys(password)
    driver.find_element("id", "login_submit").click()
    if next_url:
        wait_for(lambda: next_url in driver.current_url, 60, what=f"{next_url} after login")
    else:
        wait_for(lambda: f"/user/{user}/" in driver.current_url, 120, what="the user's server")


AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")


def accessibility_problems(driver, *, dark: bool = False) -> list[str]:
    """axe-core (package.json) run in the page as it is now: the violations of
    impact serious or critical, one line each with the elements they are on.

    dark: checked again in the dark theme (colour contrast differs)."""
    if not AXE.is_file():
        raise FileNotFoundError(f"{AXE}: `make deps` installs axe-core (npm ci)")
    driver.execute_script(AXE.read_text())
    # Bootstrap animates colours (.15 s): measured mid-change, a theme switch looks like poor contrast.
    driver.execute_script("const s = document.createElement('style'); s.id = 'axe-no-transitions';"
                          "s.textContent = '*, *::before, *::after { transition: none !important; }';"
                          "document.head.appendChild(s);")
    themes = ("light", "dark") if dark else (None,)
    lines = []
    for theme in themes:
        if theme:
            driver.execute_script("document.documentElement.setAttribute('data-bs-theme', arguments[0])", theme)
        result = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(r.violations), e => done({error: String(e)}));")
        if isinstance(result, dict):
            raise RuntimeError(f"axe-core failed on {driver.current_url}: {result['error']}")
        for v in result:
            if v["impact"] in BLOCKING_IMPACTS:
                where = "; ".join(" ".join(n["target"]) if isinstance(n["target"], list) else str(n["target"])
                                  for n in v["nodes"][:5])
                lines.append(f"{theme or 'page'}: {v['id']} ({v['impact']}): {v['help']} — {where}")
    return lines
