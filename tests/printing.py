"""Workbooks printed as a person prints them: LibreOffice turns a workbook into a PDF, and
the PDF's pages are read back with pypdf.

LibreOffice is a system package (Debian: ``libreoffice-calc-nogui``, with ``fonts-noto-cjk``
for Chinese text), installed by ``.ci/run``. Without it a test is skipped with the reason,
except when ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest


def soffice() -> str:
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return found
    message = "LibreOffice is not installed (Debian: apt-get install libreoffice-calc-nogui fonts-noto-cjk)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; required when CI=true")
    pytest.skip(message)


@dataclass(frozen=True)
class Page:
    width: float  # points
    height: float
    text: str


def printed_pages(workbook: Path, folder: Path) -> list[Page]:
    """The pages of ``workbook`` printed to PDF by LibreOffice (into ``folder``), as its
    page setup asks: paper, orientation, scaling, repeated rows, header and footer."""
    from pypdf import PdfReader

    with tempfile.TemporaryDirectory(prefix="lookback-soffice-") as profile:
        completed = subprocess.run(
            [
                soffice(),
                f"-env:UserInstallation={Path(profile).as_uri()}",
                "--headless",
                "--convert-to",
                "pdf",
                "--outdir",
                str(folder),
                str(workbook),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    pdf = folder / f"{workbook.stem}.pdf"
    if completed.returncode != 0 or not pdf.is_file():
        raise AssertionError(f"LibreOffice did not print {workbook.name}: {completed.stderr or completed.stdout}")
    reader = PdfReader(pdf)
    return [Page(float(page.mediabox.width), float(page.mediabox.height), page.extract_text()) for page in reader.pages]
