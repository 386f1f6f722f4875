"""The report as PDF, where a converter is installed: Chromium's headless print (Debian's
`chromium`), else WeasyPrint if importable. Neither: the HTML alone, and the caller says so.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 180


def converter() -> str | None:
    """The name of the converter that would be used, or None."""
    if _browser():
        return "chromium"
    try:
        import weasyprint  # noqa: F401
    except Exception:        # not installed, or its system libraries are missing
        return None
    return "weasyprint"


def to_pdf(html_path: Path, pdf_path: Path) -> str | None:
    """Write pdf_path from html_path; None when done, else why not (one sentence)."""
    browser = _browser()
    if browser:
        return _chromium(browser, html_path, pdf_path)
    if converter() == "weasyprint":
        import weasyprint
        try:
            weasyprint.HTML(filename=str(html_path)).write_pdf(str(pdf_path))
            return None
        except Exception as exc:   # a converter's failure must not lose the HTML report
            return f"weasyprint failed: {exc}"
    return ("no PDF converter installed (Debian's chromium, or weasyprint): the HTML report only; "
            "print it to PDF from any browser")


def _browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium(browser: str, html_path: Path, pdf_path: Path) -> str | None:
    with tempfile.TemporaryDirectory(prefix="lw-report-chromium-") as profile:
        command = [browser, "--headless", "--disable-gpu", "--no-sandbox", "--no-pdf-header-footer",
                   f"--user-data-dir={profile}", f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                                  env={**os.environ, "HOME": profile})
        except subprocess.TimeoutExpired:
            return f"{browser} did not print the PDF within {TIMEOUT_S} s"
        except OSError as exc:
            return f"{browser} cannot be started: {exc}"
    if done.returncode != 0 or not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"{browser} did not print the PDF (exit {done.returncode}: {tail[0]})"
    return None
