"""The console in a real headless Chromium, against the real stack: gunicorn with the
console on, a worker, a Redis of its own, and the fake Close with a few hundred deals.

Needs Debian's `chromium` and `chromium-driver` (python3 dev.py installs them where it may
run apt-get) and selenium (a dev dependency). Where the browser is missing these tests are
skipped with a message that says how to install it.

DEALKEEPER_SCREENSHOTS=docs/console writes each page's screenshot there (the README shows
them); otherwise they go to the test's temporary folder, so a run leaves the checkout clean.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fakeclose import FakeClose
from fakeclose.aged import seed_aged
from tests.cluster import REPO, Cluster, make_cluster

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
READ_PASSWORD = "browser-read-pw-41c7"
ADMIN_PASSWORD = "browser-admin-pw-9e3a"
DEALS = 300
REPS = (("Ana", "Silva"), ("Ben", "Okafor"), ("Chloe", "Martin"), ("Dev", "Patel"))
RENEWAL_STATUSES = (("Up for renewal", "active"), ("Won", "won"), ("Lost", "lost"))
WON = 30  # deals a person moves to Won once the stack runs: the history the pages show
# The shipped rules, and an example with a sweep and a report check.
RULE_FILES = ("rules/deal-hygiene.yaml", "rules/examples/sweep-stale-deals.yaml")

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:  # pragma: no cover - dev.py installs it
    webdriver = None  # type: ignore[assignment]

if webdriver is None or not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(
        "browser tests need Debian's chromium and chromium-driver packages and selenium: "
        "`sudo apt-get install chromium chromium-driver` then `python3 dev.py test` "
        "(dev.py installs them itself when run as root)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    fake = FakeClose().start()
    # Deals with a past (some untouched for months), so sweeps and the report find some,
    # owned by a team of reps in two pipelines, so the report has rows to compare.
    reps = [fake.add_user(first, last) for first, last in REPS]
    pipelines = [fake.default_pipeline_id, fake.add_pipeline("Renewals", statuses=RENEWAL_STATUSES)]
    deals = seed_aged(fake, count=DEALS, now=datetime.now(UTC), owners=reps, pipelines=pipelines)
    active = [d for d in deals if fake.opportunity(d)["status_type"] == "active"]
    rules = tmp_path_factory.mktemp("rules")
    for name in RULE_FILES:
        shutil.copy(REPO / name, rules)
    cluster = make_cluster(
        tmp_path_factory.mktemp("console"),
        fake,
        DEALKEEPER_RULES=str(rules),
        DEALKEEPER_CONSOLE_PASSWORD=READ_PASSWORD,
        DEALKEEPER_CONSOLE_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    try:
        cluster.start(workers=1)
        for deal in active[:WON]:
            pipeline = fake.opportunity(deal)["pipeline_id"]
            fake.user_update(deal, {"status_id": fake.status_id("Won", pipeline_id=pipeline)})
        cluster.settle(timeout=120)  # 30 events through a busy machine's worker
        yield cluster
    finally:
        cluster.stop()
        cluster.redis_server.stop()
        fake.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    profile = tmp_path_factory.mktemp("chromium-profile")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_experimental_option("prefs", {
        "download.default_directory": str(profile.parent / (profile.name + "-downloads")),
        "download.prompt_for_download": False,
    })  # fmt: skip
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    # Page loads wait on a busy machine's gunicorn and worker: generous, and never a sleep.
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("DEALKEEPER_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def downloads(browser: webdriver.Chrome) -> Path:
    """The folder the browser saves downloads in, emptied first."""
    folder = Path(browser.capabilities["chrome"]["userDataDir"])
    folder = folder.parent / (folder.name + "-downloads")
    folder.mkdir(exist_ok=True)
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)}
    )
    for old in folder.iterdir():
        old.unlink()
    return folder
