"""The web app in a real browser (headless chromium): the review loop, a conflict, escaping, the SQL box.

Decisions are made from the keyboard and the mouse as a reviewer would, then checked through the
Python API (ds.commits / ds.history / ds.blame): exactly those commits, by that person, in that order.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from web_support import chrome, close, require_browser, serve

SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "img" / "review.png"


@pytest.fixture
def browsers():
    """Factory of fresh headless chromium sessions, each with its own profile; all closed afterwards."""
    require_browser()
    made = []

    def make():
        profile = tempfile.mkdtemp(prefix="hyperds-chrome-")
        driver = chrome(profile)
        driver.set_page_load_timeout(60)
        made.append((driver, profile))
        return driver

    yield make
    for driver, profile in made:
        close(driver, profile)


def by(sel):
    from selenium.webdriver.common.by import By

    return (By.CSS_SELECTOR, sel)


def wait(driver, condition, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def sign_in(driver, url: str, name: str) -> None:
    driver.get(f"{url}/signin")
    driver.find_element(*by("#name")).send_keys(name)
    driver.find_element(*by("#signin-button")).click()
    wait(driver, lambda d: d.find_elements(*by("#who")))
    assert driver.find_element(*by("#who")).text == name


def keys_then_reload(driver, *keys: str) -> None:
    """Type `keys` into whatever has focus and wait for the page the resulting POST leads to."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.action_chains import ActionChains

    # A mark on the current window object: a new page load has none. (Selenium's staleness_of on the old
    # <html> element sometimes meets chromedriver's "Node ... does not belong to the document" mid-load.)
    driver.execute_script("window.__hyperds_old_page = true")
    ActionChains(driver).send_keys(*keys).perform()

    def reloaded(d) -> bool:
        try:
            return d.execute_script("return window.__hyperds_old_page !== true && document.readyState === 'complete'")
        except WebDriverException:  # the page is being replaced: ask again
            return False

    wait(driver, reloaded)


def current_frame(driver) -> str:
    return driver.find_element(*by("#review")).get_attribute("data-frame-id")


def no_dialog(driver) -> bool:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support import expected_conditions as ec

    try:
        wait(driver, ec.alert_is_present(), timeout=1)
    except TimeoutException:
        return True
    driver.switch_to.alert.dismiss()
    return False


def test_review_by_keyboard_and_mouse(md, browsers):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver = browsers()
    with serve(md.store) as server:
        sign_in(driver, server.url, "ana")
        driver.get(server.url + "/")
        threshold = driver.find_element(*by("#datasets input[name=threshold]"))
        threshold.clear()
        threshold.send_keys("0.9")
        threshold.submit()
        wait(driver, lambda d: d.find_elements(*by("#review")))
        queue = md.review_queue(0.9).frame_ids().to_pylist()
        assert driver.find_element(*by("#progress")).text.endswith(f"reviewed 0 / {len(queue)}")

        accepted = []
        for _ in range(3):
            accepted.append(current_frame(driver))
            keys_then_reload(driver, "a")
        assert accepted == sorted(queue)[:3]

        fourth = current_frame(driver)
        first_ann = md.get(fourth)["annotations"][0]["ann_id"]
        keys_then_reload(driver, "l", "zebra", Keys.ENTER)  # relabel the selected (first) annotation
        assert current_frame(driver) == fourth

        stage = driver.find_element(*by("#overlay"))
        w, h = stage.size["width"], stage.size["height"]
        drag = ActionChains(driver).move_to_element_with_offset(stage, -w // 2 + 5, -h // 2 + 5)
        drag.click_and_hold().move_by_offset(w // 5, h // 6).release().perform()
        keys_then_reload(driver, "giraffe", Keys.ENTER)  # the label box is focused after drawing

        keys_then_reload(driver, "n", "tail only, check burst", Keys.ENTER)
        keys_then_reload(driver, "u")  # undo the note
        assert current_frame(driver) == fourth
        assert no_dialog(driver)
        shot = Path(tempfile.mkdtemp()) / "review.png"
        driver.save_screenshot(str(shot))
        if os.environ.get("HYPERDS_SAVE_SCREENSHOT") == "1":
            shutil.copy(shot, SCREENSHOT)

    commits = md.commits()
    assert commits["author"].to_list() == ["ana"] * 7
    messages = commits["message"].to_list()
    assert messages[:6] == ["web review: " + m for m in ("accept",) * 3 + ("relabel", "box", "note")]
    assert messages[6] == f"web review: undo {commits['commit_id'][5][:12]}"

    for fid in accepted:
        history = md.history(fid)
        assert set(history["op"]) == {"review"} and set(history["author"]) == {"ana"}
        statuses = {a["review_status"] for a in md.get(fid)["annotations"]}
        assert statuses == {"accepted"}

    history = md.history(fourth)
    assert history["message"].to_list()[0] == "web review: relabel"
    assert history["op"].to_list() == ["review", "add", "review", "review"]
    frame = md.get(fourth)
    by_id = {a["ann_id"]: a for a in frame["annotations"]}
    assert by_id[first_ann]["label"] == "zebra" and by_id[first_ann]["review_status"] == "corrected"
    assert by_id[first_ann]["note"] is None  # the note was undone
    added = [a for a in frame["annotations"] if a["label"] == "giraffe"]
    assert len(added) == 1 and added[0]["source"] == "ana" and added[0]["source_kind"] == "human"
    x, y, bw, bh = added[0]["bbox"]
    assert 0 <= x < 0.05 and 0 <= y < 0.05 and 0.15 < bw < 0.25 and 0.1 < bh < 0.22
    blame = {r["ann_id"]: r for r in md.blame(fourth).to_dicts()}
    assert blame[first_ann]["set_by"] == "ana" and blame[added[0]["ann_id"]]["set_by"] == "ana"


def test_two_sessions_conflict(md, browsers):
    from selenium.webdriver.common.keys import Keys

    ana, ben = browsers(), browsers()
    with serve(md.store) as server:
        sign_in(ana, server.url, "ana")
        sign_in(ben, server.url, "ben")
        view = md.review_queue(0.9)
        fid = sorted(view.frame_ids().to_pylist())[0]
        url = f"{server.url}/review?dataset=md&view={view.name}&version=draft"
        ana.get(url)
        ben.get(url)
        assert current_frame(ana) == current_frame(ben) == fid
        keys_then_reload(ana, "l", "zebra", Keys.ENTER)
        keys_then_reload(ben, "a")
        message = ben.find_element(*by("#conflict")).text
        assert message.startswith("changed by ana at ") and "since you opened it" in message
        assert current_frame(ben) == fid  # ben sees the current state: ana's label
        labels = [td.text for td in ben.find_elements(*by("#annotations td.label"))]
        assert labels[0] == "zebra"

    assert md.commits()["author"].to_list() == ["ana"]
    first = md.get(fid)["annotations"][0]
    assert (first["label"], first["review_status"], first["reviewed_by"]) == ("zebra", "corrected", "ana")
    assert all(a["review_status"] == "unreviewed" for a in md.get(fid)["annotations"][1:])


def test_labels_are_text_and_sql_errors_point(md, browsers):
    evil = "<img src=x onerror=alert(1)>"
    fid = md.to_arrow(["frame_id"])["frame_id"][0].as_py()
    ann = md.get(fid)["annotations"][0]["ann_id"]
    md.commit([{"op": "review", "frame_id": fid, "ann_id": ann, "status": "correct", "label": evil,
                "note": "<script>alert(2)</script>"}], author="<b>mallory</b>")
    driver = browsers()
    with serve(md.store) as server:
        sign_in(driver, server.url, "ana")
        driver.get(f"{server.url}/frame?dataset=md&frame_id={fid}")
        assert no_dialog(driver)
        assert driver.find_element(*by("#annotations td.label")).text == evil
        assert driver.find_element(*by("#annotations td.note")).text == "<script>alert(2)</script>"
        assert "<b>mallory</b>" in driver.find_element(*by("#history")).text
        driver.get(f"{server.url}/browse?dataset=md")
        wait(driver, lambda d: "frames:" in d.find_element(*by("#facets")).text)
        assert no_dialog(driver)
        assert evil in [e.text for e in driver.find_elements(*by(".chip.label"))]
        assert any(evil in e.text for e in driver.find_elements(*by(".chip.facet")))

        box = driver.find_element(*by("#q"))
        box.send_keys("site = 'S1' AND labl = 'zebra'")
        box.submit()
        wait(driver, lambda d: d.find_elements(*by("#query-error")))
        error = driver.find_element(*by("#query-error"))
        caret = error.find_element(*by("pre.caret")).text.splitlines()
        assert caret[0] == "site = 'S1' AND labl = 'zebra'"
        assert caret[1].index("^") == caret[0].index("labl")
        assert "labels" in [s.text for s in error.find_elements(*by("code.suggestion"))]
