"""Regenerate `docs/report.png`: the report of a fresh `playcount demo` run, in headless Chromium.

    python docs/screenshot.py            # needs the `report` extra and /usr/bin/chromium

The demo's data is generated with a fixed seed, so only the run id and times change.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "report.png"
CHROMIUM = os.environ.get("PLAYCOUNT_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "playcount-demo"
        subprocess.run(
            [sys.executable, "-m", "playcount.cli", "demo", "--root", str(root)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        page_file = root / "_playcount/reports/latest.html"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1100, "height": 1200}, device_scale_factor=1)
            page.goto(page_file.as_uri(), wait_until="load")
            page.screenshot(path=str(OUT), full_page=True)
            browser.close()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
