"""Browser check of the built book: every page of the table of contents opens in headless Chromium
with no JavaScript error, no broken image, no failed request, all math rendered and every table within
the column (none whose last columns a reader reaches only by scrolling).

The HTML comes from the QUICK-mode notebooks that nbmake just executed: `make test` stages a copy
of the book in test-artifacts/quick-book, runs nbmake there with --overwrite, and then this test builds
that copy with execution off, so no notebook runs twice. Run alone (plain `pytest -m browser`),
the test stages and executes the copy itself.

Chromium and its driver are Debian's (`chromium`, `chromium-driver`); when they are missing and
we are root (CI), the test installs them with apt-get. Screenshots of the front page and of a
chapter are kept in test-artifacts/ (not committed).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "test-artifacts" / "quick-book"  # not under _build/: nbmake skips paths with a _build part
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT_PAGES = {"front-page.png": "index.html", "chapter-02.png": "book/02_retnet_convolution.html"}

sys.path.insert(0, str(ROOT / "tools"))
import badges  # the launch addresses, built from _config.yml as the README's badges are
import build_book

BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
]


def _code(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def staged_notebooks_are_executed(target: Path = STAGE) -> bool:
    """True when the staged copy holds every notebook of book/, same code, every code cell executed."""
    for src in sorted((ROOT / "book").glob("*.ipynb")):
        copy = target / "book" / src.name
        if not copy.is_file() or _code(copy) != _code(src):
            return False
        nb = nbformat.read(copy, as_version=4)
        if any(c.cell_type == "code" and c.source.strip() and c.execution_count is None for c in nb.cells):
            return False
    return True


def _find(names: list[str]) -> str | None:
    for n in names:
        path = shutil.which(n) or (n if os.path.isfile(n) else None)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Paths of Debian's chromium and chromedriver, installed with apt-get when missing (as root)."""
    browsers = ["chromium", "chromium-browser", "/usr/lib/chromium/chromium"]
    drivers = ["chromedriver", "/usr/lib/chromium/chromedriver"]
    browser, driver = _find(browsers), _find(drivers)
    if (browser is None or driver is None) and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", "chromium-driver"],
            check=True,
            env=env,
        )
        browser, driver = _find(browsers), _find(drivers)
    if browser is None or driver is None:
        if os.environ.get("GMMLIB_SKIP_BROWSER") == "1":
            pytest.skip("GMMLIB_SKIP_BROWSER=1 and no chromium/chromedriver")
        pytest.fail(
            "Debian's chromium and chromium-driver are needed: apt-get install chromium chromium-driver "
            "(or set GMMLIB_SKIP_BROWSER=1 to skip this check)"
        )
    return browser, driver


@pytest.fixture(scope="session")
def html() -> Path:
    """The QUICK-mode HTML of the book, built from notebooks executed once."""
    if staged_notebooks_are_executed():
        build_book.stage(STAGE, notebooks=False)  # fresh config, toc and pages; the executed notebooks stay
        execute = "off"  # nbmake ran them in this session (make test)
    else:
        build_book.stage(STAGE)
        execute = "force"  # run alone: execute the copy here, in QUICK mode
    env = {**os.environ, "GMMLIB_QUICK": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_book.py"), "--source", str(STAGE), "--execute", execute],
        capture_output=True,
        text=True,
        env=env,
        timeout=3000,
    )
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}"
    out = STAGE / "_build" / "html"
    assert (out / "index.html").is_file()
    return out


@pytest.fixture(scope="session")
def server(html: Path):
    """Serve the HTML on a loopback port (pages behave as when hosted, unlike file://)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/favicon.ico":  # Sphinx ships none; the browser asks anyway
                self.send_response(204)
                self.end_headers()
                return
            super().do_GET()

        def handle(self):
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser dropped a connection it no longer needed

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(html)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="session")
def driver(chromium, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, chromedriver = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in BROWSER_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(60)
    yield drv
    drv.quit()


# MathJax loads after the page (and a redirect from index.html may still be under way): wait for its
# startup, then until every math element is typeset or 30 s pass, so a slow machine does not fail the page.
WAIT_FOR_MATH = """
const done = arguments[arguments.length - 1];
const start = Date.now();
const typeset = () => Array.from(document.querySelectorAll('span.math, div.math')).every(e => e.querySelector('mjx-container'));
const poll = () => {
  if (typeset()) { done('ok'); return; }
  if (Date.now() - start > 30000) { done(window.MathJax ? 'ok' : 'MathJax not loaded'); return; }
  setTimeout(poll, 200);
};
const mj = window.MathJax;
if (mj && mj.startup && mj.startup.promise) {
  mj.startup.promise.then(poll, (e) => done('MathJax failed: ' + e));
} else { poll(); }
"""

PAGE_STATE = r"""
const strip = (el) => { const c = el.cloneNode(true); c.querySelectorAll('code, pre, .highlight').forEach(e => e.remove()); return c.textContent; };
const text = Array.from(document.querySelectorAll('article p, article li, article td, article th')).map(strip).join('\n');
return {
  title: document.title,
  brokenImages: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
  math: document.querySelectorAll('.math').length,
  unrenderedMath: Array.from(document.querySelectorAll('span.math, div.math')).filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
  mathErrors: document.querySelectorAll('mjx-merror').length,
  rawTex: (text.match(/\\\(|\\\[|\$\$|(^|[\s(])\$[^$\s][^$\n]*\$/g) || []).slice(0, 5),
  tracebacks: document.querySelectorAll('.output.traceback, .output.error').length,
  // a table whose right edge runs past the column (or past the output area that scrolls it): its last columns hidden
  wideTables: Array.from(document.querySelectorAll('article table')).filter(t => {
    let box = t.parentElement;
    while (box && box.tagName !== 'ARTICLE' && !['auto', 'scroll', 'hidden'].includes(getComputedStyle(box).overflowX)) box = box.parentElement;
    return t.getBoundingClientRect().right > (box || t.parentElement).getBoundingClientRect().right + 1;
  }).map(t => Array.from(t.querySelectorAll('th')).map(e => e.textContent.trim()).filter(x => x).slice(0, 6).join(' | ')),
  navLinks: Array.from(document.querySelectorAll('nav.bd-docs-nav a.reference.internal')).map(a => a.href),
  scrollHeight: document.documentElement.scrollHeight,
};
"""


def _severe(logs: list[dict]) -> list[str]:
    return [e["message"] for e in logs if e.get("level") == "SEVERE" and "favicon.ico" not in e.get("message", "")]


def test_every_page_renders_in_chromium(html, server, driver):
    pages = [f"{doc}.html" for doc in build_book.toc_files(STAGE)]
    problems: list[str] = []
    nav: set[str] = set()
    for page in ["index.html", *pages]:
        if not (html / page).is_file():
            problems.append(f"{page}: missing from the HTML")
            continue
        driver.get_log("browser")  # clear
        driver.get(f"{server}/{page}")
        if page == "index.html":  # a meta refresh to the first chapter: read the page it lands on, once loaded
            from selenium.webdriver.support.ui import WebDriverWait

            WebDriverWait(driver, 30).until(
                lambda d: (
                    d.current_url.endswith(pages[0]) and d.execute_script("return document.readyState") == "complete"
                )
            )
        math = driver.execute_async_script(WAIT_FOR_MATH)
        state = driver.execute_script(PAGE_STATE)
        where = f"{page} ({state['title']})"
        if math != "ok":
            problems.append(f"{where}: {math}")
        for key, label in (
            ("brokenImages", "broken images"),
            ("unrenderedMath", "math not rendered"),
            ("rawTex", "raw TeX in the text"),
            ("wideTables", "tables wider than the column (their last columns only by scrolling)"),
        ):
            if state[key]:
                problems.append(f"{where}: {label}: {state[key]}")
        if state["mathErrors"]:
            problems.append(f"{where}: {state['mathErrors']} MathJax errors")
        if state["tracebacks"]:
            problems.append(f"{where}: {state['tracebacks']} error outputs")
        errors = _severe(driver.get_log("browser"))
        if errors:
            problems.append(f"{where}: JavaScript errors or failed requests: {errors}")
        for href in state["navLinks"]:  # absolute URLs, resolved by the browser (index.html redirects)
            path = href.split("#")[0].split("?")[0]
            if path.startswith(server):
                nav.add(path[len(server) :].lstrip("/"))
            else:
                problems.append(f"{where}: navigation link outside the book: {href}")
    for target in sorted(nav):
        if not (html / target).is_file():
            problems.append(f"navigation links to a missing page: {target}")
    missing_in_nav = {p for p in pages if p not in nav and p != pages[0]}
    if missing_in_nav:
        problems.append(f"pages of the table of contents missing from the navigation: {sorted(missing_in_nav)}")
    assert not problems, "\n".join(problems)


def test_screenshots_of_the_front_page_and_a_chapter(html, server, driver):
    ARTIFACTS.mkdir(exist_ok=True)
    for name, page in SCREENSHOT_PAGES.items():
        driver.get(f"{server}/{page}")
        driver.execute_async_script(WAIT_FOR_MATH)
        height = min(driver.execute_script("return document.documentElement.scrollHeight"), 6000)
        driver.set_window_size(1280, max(height, 800))
        assert driver.save_screenshot(str(ARTIFACTS / name))
        assert (ARTIFACTS / name).stat().st_size > 10_000
        driver.set_window_size(1280, 1000)
    assert re.search(r"RetNet", driver.title + driver.page_source)


def test_every_chapter_has_a_binder_button(html, server, driver):
    """Every chapter (a notebook page) has a launch menu whose Binder button opens that chapter's
    notebook on mybinder.org, at the address the README's Binder badge uses for the first one."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    chapters = [doc for doc in build_book.toc_files(STAGE) if (STAGE / f"{doc}.ipynb").is_file()]
    assert chapters, "no notebook among the pages of _toc.yml"
    problems: list[str] = []
    for doc in chapters:
        want = badges.binder_url(f"{doc}.ipynb")
        driver.get(f"{server}/{doc}.html")
        links = driver.find_elements(By.CSS_SELECTOR, f'.dropdown-launch-buttons a[href="{want}"]')
        if not links:
            menu = driver.find_elements(By.CSS_SELECTOR, ".dropdown-launch-buttons a")
            found = [a.get_attribute("href") for a in menu]
            problems.append(f"{doc}.html: no Binder button for {want} (launch links: {found})")
            continue
        driver.find_element(By.CSS_SELECTOR, ".dropdown-launch-buttons .dropdown-toggle").click()
        try:
            WebDriverWait(driver, 10).until(EC.visibility_of(links[0]))
        except TimeoutException:
            problems.append(f"{doc}.html: the Binder button stays hidden after opening the launch menu")
            continue
        if links[0].text.strip() != "Binder":
            problems.append(f"{doc}.html: the Binder button reads {links[0].text!r}")
    assert not problems, "\n".join(problems)
