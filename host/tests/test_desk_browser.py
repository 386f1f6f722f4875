"""The desk in a real browser: Debian's Chromium, headless, driven by Playwright (launched at
/usr/bin/chromium: nothing is downloaded), against `linewatch aggregator` fed by the emulated
demo segment in real time through a private Mosquitto (one chain for the whole module).

A page opened before the first sound shows the nodes and then each incident as it forms,
without a reload; the incident list filters; confirming needs an operator's login and lands
in the evidence log with the operator's name; a command sent from a node's page goes out and
the node's answer shows. Screenshots go to test-artifacts/desk/ (gitignored)."""
from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from linewatch.commission import config as cfg
from linewatch.commission.store import open_store
from linewatch.desk.auth import Operators
from linewatch.emulator import scenario as sc
from linewatch.emulator.commission import Commission
from linewatch.emulator.runner import RunOptions, emulate, prepare
from linewatch.mosquitto import BrokerError, Mosquitto, find_mosquitto

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "desk"
PASSWORD = "a long test password"
WAIT_MS = 90_000      # how long a page may take to show something at load ~20 (a wait, not a timing)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (Debian's chromium; tools/setup.sh test installs it)")
    try:
        find_mosquitto()
    except BrokerError as exc:
        pytest.skip(str(exc))
    folder = tmp_path_factory.mktemp("desk")
    shots = folder / "screenshots"
    shots.mkdir()
    scenario = sc.load("demo")
    world, _ = prepare(scenario, real_time=True)
    with Mosquitto(workdir=folder / "broker") as broker, sync_api.sync_playwright() as pw:
        desk = Commission.prepare(folder / "commission", world, (broker.host, broker.port))
        config = cfg.load(desk.config_path)
        Operators(config.desk.operators_path(config.store)).add("ana", PASSWORD)
        desk.start_aggregator()
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        run = None
        try:
            url = desk.desk_url()
            assert url, desk.log_tail()
            watcher = browser.new_page(viewport={"width": 1280, "height": 800})
            watcher.set_default_timeout(WAIT_MS)
            watcher.goto(url + "#/map")
            watcher.wait_for_selector("path.lw-node", timeout=30_000)
            watcher.evaluate("window.__notReloaded = true")
            options = RunOptions((broker.host, broker.port), folder / "nodes", desk.master_key,
                                 virtual=False, drain_s=10, progress=False)
            run = threading.Thread(target=emulate, args=(scenario, world, options), daemon=True)
            run.start()
            yield {"url": url, "browser": browser, "watcher": watcher, "desk": desk, "world": world,
                   "config": config, "shots": shots}
        finally:
            if run is not None:
                run.join(120)
                try:       # the whole demo on the map (docs/img/desk-map.png is one of these)
                    watcher.wait_for_timeout(2000)
                    watcher.screenshot(path=str(shots / "map-after-demo.png"))
                except Exception:
                    pass
            browser.close()
            desk.stop_aggregator()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for shot in shots.glob("*.png"):
                shutil.copy(shot, ARTIFACTS / shot.name)
            shutil.copy(desk.folder / "aggregator.log", ARTIFACTS / "aggregator.log")


def new_page(chain):
    page = chain["browser"].new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(WAIT_MS)
    # what the page itself said, for a failure's message (a script error shows nowhere else)
    page.said = []
    page.on("pageerror", lambda exc: page.said.append("error: %s" % exc))
    page.on("console", lambda m: page.said.append("%s: %s" % (m.type, m.text)) if m.type in ("error", "warning")
            else None)
    page.on("response", lambda r: page.said.append("%d %s %s" % (r.status, r.request.method, r.url))
            if r.status >= 400 or r.request.method == "POST" else None)
    return page


def wait_for(chain, page, selector, name):
    """wait_for_selector that, failing, keeps a screenshot and says what the page said."""
    try:
        page.wait_for_selector(selector)
    except Exception as exc:
        page.screenshot(path=str(chain["shots"] / ("failed-%s.png" % name)), full_page=True)
        raise AssertionError("%s: %s\npage said:\n%s" % (selector, exc, "\n".join(page.said[-40:]))) from None


def logged_in_page(chain):
    page = new_page(chain)
    page.goto(chain["url"] + "#/login")
    page.fill("#login-name", "ana")
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#logout")
    return page


def test_the_map_shows_the_line_and_every_node(chain):
    page = chain["watcher"]
    assert page.locator("path.lw-node").count() == len(chain["world"].nodes)
    assert page.locator("path.lw-line").count() == 1
    assert page.locator("path.lw-segment").count() == len({n.segment for n in chain["world"].nodes})


def test_an_incident_appears_live_without_a_reload(chain):
    page = chain["watcher"]
    page.wait_for_selector("path.lw-incident", timeout=90_000)
    page.wait_for_selector("path.lw-node-online", timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator("#live.on").count() == 1
    assert page.locator("#map-incidents tr").count() >= 1
    page.screenshot(path=str(chain["shots"] / "map-live.png"))


def test_a_node_command_goes_out_and_its_answer_shows(chain):
    page = logged_in_page(chain)
    page.goto(chain["url"] + "#/node/0x0101")
    page.wait_for_selector("#command-form")
    page.select_option("#command-name", "rebirth")
    page.click("#command-send")
    page.wait_for_selector("#commands tr[data-state]")
    page.wait_for_selector("#commands tr[data-state=obeyed]", timeout=60_000)
    assert "birth received" in page.inner_text("#commands")
    assert "ana" in page.inner_text("#commands")
    page.wait_for_selector("#recent-frames td.hex")
    page.screenshot(path=str(chain["shots"] / "node-command.png"), full_page=True)
    store = open_store(str(chain["desk"].db_path), readonly=True)
    try:
        entry = store.commission_entries("command", 0x0101)[0]
    finally:
        store.close()
    assert entry.verified == "ana" and json.loads(entry.note)["command"] == "rebirth"
    page.close()


def test_the_incident_list_filters(chain):
    sync_api = pytest.importorskip("playwright.sync_api")
    page = new_page(chain)
    page.goto(chain["url"] + "#/incidents")
    page.wait_for_selector("#incident-table tr[data-id]", timeout=60_000)
    page.wait_for_selector("#incident-table tr[data-class=explosion]", timeout=60_000)
    everything = page.locator("#incident-table tr[data-id]").count()
    page.select_option("#incident-filters select[name=class]", "explosion")
    page.click("#incident-filters button[type=submit]")
    # (no wait_for_function: the desk's CSP refuses the eval it needs, as it should)
    page.wait_for_selector("#incident-table tr[data-id]:not([data-class=explosion])", state="detached")
    page.wait_for_selector("#incident-table tr[data-class=explosion]")
    assert page.locator("#incident-table tr[data-id]").count() <= everything
    page.fill("#incident-filters input[name=since]", "2999-01-01T00:00Z")
    page.click("#incident-filters button[type=submit]")
    sync_api.expect(page.locator("#incident-count")).to_have_text("0 incidents", timeout=WAIT_MS)
    page.fill("#incident-filters input[name=since]", "yesterday")
    page.click("#incident-filters button[type=submit]")
    page.wait_for_selector("#incident-rows .error:has-text('since')")
    page.screenshot(path=str(chain["shots"] / "incidents-filtered.png"), full_page=True)
    page.close()


def test_confirming_needs_a_login_and_lands_in_the_evidence_log(chain):
    watcher = chain["watcher"]
    incident_id = watcher.locator("#map-incidents tr[data-id]").first.get_attribute("data-id")
    observer = new_page(chain)
    observer.goto(chain["url"] + "#/incident/" + incident_id)
    observer.wait_for_selector("#judge-login")
    assert observer.locator("#confirm").count() == 0
    observer.close()
    page = logged_in_page(chain)
    page.goto(chain["url"] + "#/incident/" + incident_id)
    page.wait_for_selector("#judge-form")
    page.fill("#judge-note", "seen from the observation post")
    page.click("#confirm")
    wait_for(chain, page, "#judgements td:has-text('seen from the observation post')", "confirm")
    page.screenshot(path=str(chain["shots"] / "incident-confirmed.png"), full_page=True)
    store = open_store(str(chain["desk"].db_path), readonly=True)
    try:
        entry = store.commission_entries("incident_status")[0]
    finally:
        store.close()
    note = json.loads(entry.note)
    assert (entry.verified, note["incident"], note["new"]) == ("ana", incident_id, "confirmed")
    page.close()
