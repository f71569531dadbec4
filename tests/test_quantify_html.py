"""The HTML report renders in headless Chromium (skipped where Chromium is not installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from crackrender.quantify import quantify_mask, write_report
from crackrender.quantify import shapes

# Debian's package installs /usr/bin/chromium; Ubuntu's snap shim calls it chromium-browser
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)


def _screenshot(html: Path, png: Path, profile: Path) -> None:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1280,1600", html.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=90)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium to run)")
def test_report_renders_in_chromium(tmp_path):
    mask, _ = shapes.branching(8, arm=120)
    image = np.full(mask.shape + (3,), 175, np.uint8)
    image[mask] = 70
    write_report(quantify_mask(mask, gsd=0.04), tmp_path, "y", image=image)
    png = tmp_path / "shot.png"
    _screenshot(tmp_path / "y_report.html", png, tmp_path / "profile")
    shot = cv2.imread(str(png))
    assert shot is not None and shot.shape[:2] == (1600, 1280)
    assert shot.std() > 10  # not a blank page
    # the embedded overlay picture is decoded and drawn: a large area of the photo's gray
    photo = (np.abs(shot.astype(int) - 175) <= 3).all(axis=2)
    assert photo.sum() > 200_000
    ys, xs = np.nonzero(photo)
    # and inside it the cracks carry their width class's colour (>=0.3 mm: red, RGB 231,76,60
    # blended), so the red is the overlay's and not only the histogram bar's further down
    b, g, r = (shot[ys.min():ys.max() + 1, xs.min():xs.max() + 1, i].astype(int) for i in range(3))
    assert ((r > 150) & (g < 130) & (b < 120)).sum() > 500
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
