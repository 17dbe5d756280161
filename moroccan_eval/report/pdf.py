"""Printing the HTML report to PDF with headless Chromium (``report --pdf``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import MoroccanEvalError


def find_chromium() -> str | None:
    """The Chromium binary: ``$MOROCCAN_EVAL_CHROMIUM`` or the first one on ``PATH``."""
    configured = os.environ.get("MOROCCAN_EVAL_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def render_pdf(html_path: Path, pdf_path: Path, *, timeout_s: float = 120) -> None:
    """Print the HTML report to an A4 PDF with headless Chromium."""
    binary = find_chromium()
    if binary is None:
        raise MoroccanEvalError(
            "--pdf needs Chromium: install it (Debian: apt-get install chromium) or set "
            f"MOROCCAN_EVAL_CHROMIUM to its path; the HTML report {html_path} was written")
    tmp = pdf_path.with_name(f".{pdf_path.name}.tmp")
    with tempfile.TemporaryDirectory(prefix="moroccan-eval-chromium-") as profile:
        command = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--no-pdf-header-footer",
            f"--print-to-pdf={tmp}", html_path.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise MoroccanEvalError(f"Chromium did not print {html_path} within "
                                    f"{timeout_s:g} s; the HTML report was written") from None
    if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise MoroccanEvalError(f"Chromium could not print the PDF (exit {done.returncode}) "
                                f"{detail[0]}; the HTML report {html_path} was written")
    tmp.replace(pdf_path)
