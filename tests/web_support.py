"""Helpers for the web tests: the app served by a real uvicorn in a thread, HTTP sign-in, a real browser.

The browser is Debian's chromium driven by its chromedriver (selenium). Without them the browser
tests skip, saying how to install them, unless HYPERDS_REQUIRE_BROWSER=1 (CI) makes that a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import threading
import time

import httpx
import pytest
import uvicorn

from hyperds.web import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Server:
    """`app` served by uvicorn on 127.0.0.1 at a free port (a socket bound first, so no race for the port)."""

    def __init__(self, app):
        self.app = app
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def serve(store, **options) -> Server:
    options.setdefault("cache_dir", tempfile.mkdtemp(prefix="hyperds-web-test-"))
    return Server(create_app(store, **options))


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "page has no CSRF field"
    return found.group(1)


def signed_in(url: str, name: str, token: str | None = None) -> tuple[httpx.Client, str]:
    """An HTTP client signed in as `name`; returns it and its CSRF secret."""
    client = httpx.Client(base_url=url, timeout=60, follow_redirects=True)
    page = client.get("/signin")
    form = {"csrf": csrf_of(page.text), "name": name, "next": "/"}
    if token is not None:
        form["token"] = token
    home = client.post("/signin", data=form)
    assert home.status_code == 200, home.text
    return client, csrf_of(home.text)


def require_browser() -> None:
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return
    message = (
        "no browser for the web tests: install Debian's chromium and chromium-driver "
        "(sudo apt-get install -y chromium chromium-driver)"
    )
    if os.environ.get("HYPERDS_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " (HYPERDS_REQUIRE_BROWSER=1)")
    pytest.skip(message)


def chrome(profile_dir: str):
    """A headless chromium with its own fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile_dir}", "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def close(driver, profile_dir: str) -> None:
    driver.quit()
    shutil.rmtree(profile_dir, ignore_errors=True)
