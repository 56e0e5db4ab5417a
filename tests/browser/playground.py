#!/usr/bin/env python3
"""Browser tests of `valinectl serve`'s playground page, in headless Chromium driven by selenium.

Usage: playground.py BASE_URL   (a `valinectl serve` without --live and an empty DATA_DIR; .ci/run
starts one as on a fresh clone and one with DISCORD_BOT_TOKEN and GITHUB_TOKEN in its environment,
which must make no difference)

Screenshots of each step go to $PLAYGROUND_SCREENSHOTS (default target/playground-screenshots).
Needs Debian's `chromium` and `chromium-driver` (or CHROMIUM / CHROMEDRIVER naming the binaries)
and `selenium` from .ci/requirements.txt. Exits non-zero on the first failed step.
"""

import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8787"
SHOTS = os.environ.get("PLAYGROUND_SCREENSHOTS", os.path.join("target", "playground-screenshots"))
TIMEOUT = float(os.environ.get("PLAYGROUND_TIMEOUT", "20"))

RERUN = "Re-run failed jobs"
INCIDENT_WITH_RERUN = (
    "//div[@id='messages']/div[contains(@class,'message')][.//button[normalize-space()='%s']]" % RERUN
)


def browser():
    options = Options()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1440,960", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


class Steps:
    def __init__(self, driver):
        self.d = driver
        self.n = 0

    def wait(self, what, condition, timeout=TIMEOUT):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1, ignored_exceptions=(Exception,)).until(
                lambda d: condition())
        except Exception:
            self.shot("FAILED-" + what.replace(" ", "-"))
            raise AssertionError("timed out waiting for: " + what)

    def shot(self, name):
        os.makedirs(SHOTS, exist_ok=True)
        self.n += 1
        path = os.path.join(SHOTS, "%02d-%s.png" % (self.n, name))
        self.d.save_screenshot(path)
        print("  screenshot", path)

    def who(self, key):
        Select(self.d.find_element(By.ID, "who")).select_by_value(key)

    def channel(self, name):
        self.d.find_element(By.CSS_SELECTOR, "#channels .channel[data-channel='%s']" % name).click()
        self.wait("#" + name + " shown", lambda: self.d.find_element(By.ID, "channel-title").text == "# " + name)

    def messages(self):
        return self.d.find_elements(By.CSS_SELECTOR, "#messages > .message")

    def received(self, kind):
        return self.d.find_elements(By.CSS_SELECTOR, "#received .received-" + kind)


def test_page(s):
    print("step: the page is the playground: fake Discord and GitHub, the demo channels and scenarios")
    mode = s.d.find_element(By.ID, "mode").text
    assert mode.startswith("playground"), "the page says %r" % mode
    channels = [c.get_attribute("data-channel") for c in s.d.find_elements(By.CSS_SELECTOR, "#channels .channel")]
    assert "general" in channels and "alerts" in channels, channels
    scenarios = [b.get_attribute("data-scenario") for b in s.d.find_elements(By.CSS_SELECTOR, "#scenarios button")]
    assert "fails" in scenarios and "newer-passes" in scenarios, scenarios
    s.shot("page")


def test_status(s):
    print("step: /status shows the demo repository's runs")
    s.who("admin")
    box = s.d.find_element(By.ID, "command")
    box.send_keys("/status")
    box.send_keys(Keys.ENTER)

    def embed():
        titles = [t.text for t in s.d.find_elements(By.CSS_SELECTOR, "#messages .embed .embed-title")]
        return "CI" in titles and s.d.find_elements(By.CSS_SELECTOR, "#messages .embed-description")
    s.wait("the /status embed", embed)
    used = s.d.find_elements(By.CSS_SELECTOR, "#messages .message .used")[-1].text
    assert "Ada used /status" in used, used
    assert "#43" in s.d.find_element(By.ID, "messages").text
    s.shot("status")


def test_incident(s):
    print("step: fails, fails again, newer passes: one message goes failing -> resolved, a reply under it")
    s.d.find_element(By.ID, "sequence-fail-fail-pass").click()
    s.wait("the #alerts channel", lambda: s.d.find_element(By.ID, "channel-title").text == "# alerts")
    first = s.wait("the incident message", lambda: s.d.find_elements(By.XPATH, INCIDENT_WITH_RERUN))[0]
    incident_id = first.get_attribute("data-id")
    s.shot("incident-failing")

    def resolved():
        replies = s.d.find_elements(By.CSS_SELECTOR, "#messages .reply-ref[data-reply-to='%s']" % incident_id)
        return replies and "Resolved" in replies[0].find_element(By.XPATH, "..").text
    s.wait("the resolution reply", resolved)
    incident = s.d.find_element(By.ID, "msg-" + incident_id)
    assert "(edited)" in incident.text, incident.text
    assert not incident.find_elements(By.TAG_NAME, "button"), "a resolved incident keeps its buttons"
    incidents = [m for m in s.messages() if m.find_elements(By.CSS_SELECTOR, ".embed")]
    assert len(incidents) == 1, "one message per incident, got %d" % len(incidents)
    s.shot("incident-resolved")


def test_rerun(s):
    print("step: Re-run failed jobs: a plain member is refused, a responder's re-run reaches GitHub")
    s.d.find_element(By.CSS_SELECTOR, "#scenarios button[data-scenario='fails']").click()
    s.wait("a new incident", lambda: s.d.find_elements(By.XPATH, INCIDENT_WITH_RERUN))
    incident_id = s.d.find_elements(By.XPATH, INCIDENT_WITH_RERUN)[-1].get_attribute("data-id")

    def press():
        m = s.d.find_element(By.ID, "msg-" + incident_id)
        m.find_element(By.XPATH, ".//button[normalize-space()='%s']" % RERUN).click()

    s.who("member")
    press()

    def refusal():
        notes = [m for m in s.messages() if "Only Max can see this" in m.text]
        return notes and "RESPONDER_ROLE_IDS" in notes[-1].text
    s.wait("the refusal", refusal)
    assert not s.received("rerun"), "a refused press reached GitHub"
    s.shot("rerun-refused-member")

    s.who("responder")
    press()
    s.wait("the re-run in the GitHub panel", lambda: s.received("rerun"))
    assert "re-run failed jobs of CI" in s.received("rerun")[0].text
    s.wait("the answer to the responder", lambda: [m for m in s.messages() if "Only Rui can see this" in m.text])
    # The playground's re-run passes: a flake, said in the resolve reply.
    s.wait("the flaky resolve", lambda: "flaky: passed on attempt 2" in reply_to(s, incident_id))
    s.shot("rerun-responder")
    return incident_id


def reply_to(s, message_id):
    """The text of the first reply to a message, or ""."""
    refs = s.d.find_elements(By.CSS_SELECTOR, "#messages .reply-ref[data-reply-to='%s']" % message_id)
    return refs[0].find_element(By.XPATH, "..").text if refs else ""


def test_flake(s, incident_id):
    print("step: the re-run's pass was a flake: the card named its signature, and /flaky lists it")
    signature = s.d.find_element(By.ID, "msg-" + incident_id).text
    assert "Signature" in signature and "seen" in signature, "the card names the failure's signature: %r" % signature
    buttons = [b.get_attribute("data-scenario") for b in s.d.find_elements(By.CSS_SELECTOR, "#scenarios button")]
    assert "passes-on-rerun" in buttons, buttons
    s.who("member")
    box = s.d.find_element(By.ID, "command")
    box.send_keys("/flaky")
    box.send_keys(Keys.ENTER)
    listed = lambda: [m for m in s.messages() if "Flakiest jobs" in m.text]
    text = s.wait("the /flaky answer", listed)[-1].text
    assert "CI" in text and "test" in text and "1×" in text, text
    s.shot("flaky")


def new_incident(s, scenario):
    """Runs a scenario and answers the id of the incident message it posted."""
    before = {m.get_attribute("data-id") for m in s.d.find_elements(By.XPATH, INCIDENT_WITH_RERUN)}
    s.d.find_element(By.CSS_SELECTOR, "#scenarios button[data-scenario='%s']" % scenario).click()
    fresh = lambda: [m for m in s.d.find_elements(By.XPATH, INCIDENT_WITH_RERUN) if m.get_attribute("data-id") not in before]
    return s.wait("a new incident after " + scenario, fresh)[-1].get_attribute("data-id")


def test_known(s):
    print("step: the demo's known issue says so and pings no one; Mark known… links a failure to its issue")
    known_id = new_incident(s, "known-issue-fails")
    s.wait("the known header", lambda: "flaky DNS" in s.d.find_element(By.ID, "msg-" + known_id).text)
    card = s.d.find_element(By.ID, "msg-" + known_id)
    assert "known:" in card.text and "issues/42" in card.text, card.text
    assert not card.find_elements(By.CSS_SELECTOR, ".mention"), "a known issue pings no one: %r" % card.text
    assert not card.find_elements(By.XPATH, ".//button[normalize-space()='Mark known…']"), "already linked"
    s.shot("known-issue")
    incident_id = new_incident(s, "fails")
    card = s.d.find_element(By.ID, "msg-" + incident_id)
    assert card.find_elements(By.CSS_SELECTOR, ".mention"), "a new failure pings: %r" % card.text
    s.who("responder")
    card.find_element(By.XPATH, ".//button[normalize-space()='Mark known…']").click()
    s.wait("the Mark known form", lambda: s.d.find_element(By.ID, "form-issue"))
    s.d.find_element(By.ID, "form-issue").send_keys("#7")
    s.d.find_element(By.ID, "form-note").send_keys("slow checkout test")
    s.shot("known-form")
    s.d.find_element(By.ID, "form-submit").click()
    linked = lambda: [m for m in s.messages() if "Only Rui can see this" in m.text and "known: #7" in m.text]
    s.wait("the link's answer", linked)
    s.shot("known-linked")


def main():
    driver = browser()
    try:
        driver.get(BASE + "/")
        s = Steps(driver)
        s.wait("the page", lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        test_page(s)
        test_status(s)
        test_incident(s)
        test_flake(s, test_rerun(s))
        test_known(s)
        print("playground browser tests: all passed")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
