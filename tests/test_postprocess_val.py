"""benchmarks/postprocess_val.py: its post-processes on hand-made maps, and the command on a tiny
dataset as a user runs it (probabilities computed once, then read from the cache)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import line_mask, write_pair_dataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from postprocess_val import postprocess  # noqa: E402


def _u8(p):
    return np.round(np.asarray(p) * 255).astype(np.uint8)


def test_small_components_are_dropped_and_the_crack_kept():
    prob = np.zeros((64, 96))
    prob[line_mask(64, 96, thickness=2)] = 0.9       # a crack: 2 x 86 px
    prob[5:8, 5:8] = 0.9                             # a 9 px speck
    kept = postprocess([_u8(prob)], 0.5, lines=0, min_area=20)
    assert kept[line_mask(64, 96, thickness=2)].all() and not kept[5:8, 5:8].any()
    assert postprocess([_u8(prob)], 0.5, lines=0, min_area=0)[5:8, 5:8].all()


def test_flipped_predictions_are_averaged_before_the_threshold():
    plain, flipped = np.full((8, 8), 0.6), np.full((8, 8), 0.2)
    assert postprocess([_u8(plain)], 0.5, lines=0, min_area=0).all()
    assert not postprocess([_u8(plain), _u8(flipped)], 0.5, lines=0, min_area=0).any()  # mean 0.4


def test_long_straight_lines_are_dropped_as_segment_does():
    prob = np.zeros((64, 400))
    prob[30:32, 10:390] = 0.9                        # a 380 px straight stroke: a joint
    assert postprocess([_u8(prob)], 0.5, lines=200, min_area=0).sum() < 0.05 * (prob > 0.5).sum()
    assert postprocess([_u8(prob)], 0.5, lines=0, min_area=0).sum() == (prob > 0.5).sum()


def test_the_command_scores_every_setting_and_reuses_its_cache(tmp_path, model_file):
    data = tmp_path / "data"
    masks = {f"im{i}": line_mask(64, 96, row=20 + 10 * i) for i in range(3)}
    write_pair_dataset(data / "tiny", masks, {"val": list(masks)})
    cmd = [sys.executable, str(REPO / "benchmarks" / "postprocess_val.py"), str(model_file), "--data", str(data),
           "--datasets", "tiny", "--cache", str(tmp_path / "cache"), "--lines", "0", "200",
           "--min-area", "0", "20", "--tta", "none", "flips"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    rows = [line for line in first.stdout.splitlines() if line.startswith("| ") and "mean" not in line]
    assert len(rows) == 2 * 2 * 2
    f1 = [float(row.split("|")[-2]) for row in rows]
    assert all(0 <= v <= 1 for v in f1)
    (cached,) = (tmp_path / "cache").glob("*/tiny.npz")
    stamp = cached.stat().st_mtime_ns
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.stdout == first.stdout and cached.stat().st_mtime_ns == stamp
    assert "tiny:val" not in second.stderr  # no image segmented again


def test_a_bad_length_is_a_one_line_error(tmp_path, model_file):
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "postprocess_val.py"), str(model_file),
                        "--lines", "10", "--cache", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1
