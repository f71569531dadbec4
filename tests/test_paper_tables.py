"""`crackrender tables`: the paper's rows and numbers, the row configs, the markdown, and quick
end-to-end runs on synthetic data (train, reuse, evaluate, time)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import line_mask, shared_dataset, write_pair_dataset

from crackrender.errors import CrackRenderError
from crackrender.models import Prediction, create_model
from crackrender.paper import TABLES
from crackrender.paper.configs import CONFIG_DIR, row_config
from crackrender.paper.markdown import render_table
from crackrender.paper.measure import evaluate_model, load_test_sets, measure_fps
from crackrender.paper.runner import ensure_trained
from crackrender.train.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.run([sys.executable, "-m", "crackrender.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


# ------------------------------------------------------------------ specs and the paper's numbers


def test_specs_cover_every_paper_row():
    assert [len(TABLES[n].rows) for n in (1, 2, 3)] == [5, 9, 6]
    for table in TABLES.values():
        assert [r.set_no for r in table.rows] == list(range(1, len(table.rows) + 1))
        assert len({r.key for r in table.rows}) == len(table.rows)
        for row in table.rows:
            assert len(row.cells) == len(table.desc_columns)
            assert {c.key for c in table.columns if c.paper} == set(row.paper), row.key
    t1, t2, t3 = (TABLES[n] for n in (1, 2, 3))
    assert [r.run for r in t1.rows] == ["conv-decoder", "cbprn-k0", "cbprn-k1", "cbprn-k2", "cbprn-k3"]
    assert {r.run for r in t2.rows} == {"cbprn-k2"} and t3.rows[-1].run == "cbprn-k2"
    assert [(r.predict["alpha"], r.predict["beta"]) for r in t2.rows] == [
        (a, b) for a in (0.2, 0.3, 0.4) for b in (0.6, 0.7, 0.8)]
    assert [r.long_edge for r in t3.rows] == [True] * 5 + [False]


def test_paper_numbers_as_printed():
    t1, t2, t3 = (TABLES[n] for n in (1, 2, 3))
    assert t1.rows[0].paper == {"miou": 85.54, "mba": 88.67, "dice": 87.31}
    assert t1.rows[3].paper == {"miou": 86.49, "mba": 90.52, "dice": 88.54}
    assert t1.rows[4].paper["mba"] == 89.09
    assert t2.rows[4].paper == {"miou": 87.23, "dice": 93.56, "mba": 89.59}  # as printed (see the swap note)
    assert t2.rows[8].paper == {"miou": 85.89, "dice": 89.76, "mba": 87.87}
    assert t2.rows[1].paper["dice"] == 92.47
    fcn, refinenet, cbprn = t3.rows[0], t3.rows[4], t3.rows[5]
    assert (fcn.paper["coarse_miou"], fcn.paper["fps"]) == (78.36, 7.83)
    assert refinenet.paper == {"coarse_miou": 81.28, "coarse_mba": 82.31, "coarse_dice": 83.73,
                               "miou": 83.38, "mba": 87.29, "dice": 85.33, "fps": 3.49}
    assert cbprn.paper["coarse_miou"] is None and (cbprn.paper["mba"], cbprn.paper["fps"]) == (93.56, 13.45)
    # the paper's text: refined PointRend within 83.30 +- 0.09, 87.14 +- 0.16, 85.27 +- 0.06
    for key, centre, spread in (("miou", 83.30, 0.09), ("mba", 87.14, 0.16), ("dice", 85.27, 0.06)):
        assert all(abs(r.paper[key] - centre) <= spread + 1e-9 for r in t3.rows[:5]), key
    # the swap the Table 2 note explains: set 3 is Table 1's set 4 with Dice and mBA exchanged
    assert (t2.rows[2].paper["dice"], t2.rows[2].paper["mba"]) == (t1.rows[3].paper["mba"], t1.rows[3].paper["dice"])
    assert any("swapped" in n or "swap" in n for n in t2.notes)


def test_row_selection():
    assert [r.key for r in TABLES[3].select(["cbprn", "1"])] == ["fcn18", "cbprn"]
    assert len(TABLES[2].select(None)) == 9
    with pytest.raises(CrackRenderError, match="Table 1 has no row 'k9'; rows: conv, k0"):
        TABLES[1].select(["k9"])


# ------------------------------------------------------------------ configs


def test_every_paper_config_loads_and_builds_its_model():
    files = sorted(CONFIG_DIR.glob("*.yaml"))
    runs = {r.run for t in TABLES.values() for r in t.rows}
    assert {p.stem for p in files} == runs | {"base", "quick"}  # one file per trained row, none unused
    for path in files:
        cfg = load_config(path)
        model = create_model(**cfg["model"])
        assert model.config["name"] == cfg["model"]["name"], path


def test_row_configs_follow_the_papers_recipe():
    for run in sorted({r.run for t in TABLES.values() for r in t.rows}):
        cfg = row_config(run)
        own = yaml.safe_load((CONFIG_DIR / f"{run}.yaml").read_text())
        assert cfg["name"] == run and cfg["model"].items() >= own["model"].items()
        assert cfg["optim"] == {"name": "adam", "lr": 0.01, "weight_decay": 1e-4, "warmup_epochs": 100, "poly_power": 0.9}
        assert (cfg["data"]["batch_size"], cfg["data"]["size"], cfg["data"]["mode"]) == (16, 256, "resize")
        assert cfg["trainer"]["max_epochs"] == 1000
        assert [e["split"] for e in cfg["data"]["train"]] == ["train"] * 3
        assert [Path(e["root"]).name for e in cfg["data"]["val"]] == ["cfd", "deepcrack537", "crack500"]
    assert row_config("cbprn-k3")["model"]["band_k"] == 3
    assert row_config("pointrend-fcn18")["model"]["coarse"] == "fcn"
    assert row_config("pointrend-fcn18")["model"].get("coarse_long_edge") is None  # set at evaluation only


def test_quick_overlay_applies_only_the_keys_a_model_takes():
    pr = row_config("pointrend-pspnet", quick=True)
    assert pr["model"]["backbone"] == "resnet18" and pr["model"]["point_hidden"] == 32 and "edge_dim" not in pr["model"]
    conv = row_config("conv-decoder", quick=True)
    assert conv["model"]["feature_dim"] == 32 and "point_hidden" not in conv["model"]
    assert row_config("cbprn-k1", quick=True)["model"]["band_k"] == 1
    for run in ("pointrend-pspnet", "conv-decoder", "cbprn-k1"):
        create_model(**row_config(run, quick=True)["model"])


# ------------------------------------------------------------------ measuring


class Oracle(torch.nn.Module):
    """Reads write_pair_dataset's images (crack drawn at 40 on 180 grey) exactly; unrefined: nothing."""

    def predict(self, images, *, refine=True, **kwargs):
        mask = images[:, 0] < 0.5 if refine else torch.zeros_like(images[:, 0], dtype=torch.bool)
        return Prediction(mask, mask.float(), [int(mask[0].sum())] * images.shape[0])


def test_evaluate_model_pools_test_sets_with_the_projects_metrics(tmp_path):
    masks = {f"s{i}": line_mask(row=20 + 5 * i) for i in range(4)}
    a = write_pair_dataset(tmp_path / "a", masks, {"test": ["s0", "s1", "s2"]})
    b = write_pair_dataset(tmp_path / "b", masks, {"test": ["s3"]})
    sets = load_test_sets([("a", a, "test"), ("b", b, "test")], limit=2)
    assert [len(s.indices) for s in sets] == [2, 1] and sets[0].indices == [0, 2]  # evenly spaced
    res = evaluate_model(Oracle(), sets, torch.device("cpu"), coarse=True, progress=False)
    assert res["all"]["n_images"] == 3 and set(res["per_dataset"]) == {"a", "b"}
    assert res["all"]["miou"] == res["all"]["dice"] == res["all"]["mba"] == 1.0
    assert res["all"]["coarse_dice"] == 0.0 and res["all"]["coarse_iou"] == 0.0
    crack = 3 * 86  # line_mask: 3 rows of columns 5..90 in 64x96; no crack predicted: background IoU only
    assert res["all"]["coarse_miou"] == pytest.approx(0.5 * (1 - crack / (64 * 96)))
    fps = measure_fps(Oracle(), np.full((48, 64, 3), 180, np.uint8), torch.device("cpu"), warmup=1, repeats=3)
    assert fps["fps"] > 0 and len(fps["times_s"]) == 3 and fps["refined"] == 0.0


def _fake_result(table, **extra):
    rows = []
    for r in table.rows:
        ours = {c.key: 0.5 for c in table.columns}
        ours["fps"] = 1.234
        rows.append({"key": r.key, "cells": list(r.cells), "paper": r.paper, "ours": ours,
                     "per_dataset": {"cfd": ours, "deepcrack537": ours}, "train": {"seconds": 75, "reused": True}})
    return {"mode": "quick", "command": "crackrender tables 2 --quick", "date": "2025-01-01 00:00:00 UTC", "wall_s": 61,
            "device": "CPU: test", "torch": "2", "dtype": "float32",
            "data": {"kind": "shared", "train": [{"root": "../shared/data/cfd", "split": "train"}],
                     "test": [{"name": "cfd", "split": "test", "images": 3, "of": 18}]},
            "fps_image": {"width": 512, "height": 384, "source": "render", "warmup": 1, "repeats": 3},
            "long_edge": None, "rows": rows, **extra}


def test_markdown_puts_ours_beside_the_papers_in_the_papers_column_order():
    md = render_table(TABLES[2], _fake_result(TABLES[2]))
    lines = md.splitlines()
    header = next(ln for ln in lines if ln.startswith("| Set No."))
    assert "| mIoU ours | mIoU paper | Dice ours | Dice paper | mBA ours | mBA paper |" in header
    body = [ln for ln in lines if ln.startswith("| ") and ln[2].isdigit()]
    assert len(body) == 9 + 9  # the main table, then the per-test-set table
    assert body[4].startswith("| 5 | (0.0,0.3) | (0.3,0.7) | (0.7,1.0) | 50.00 | 87.23 | 50.00 | 93.56 | 50.00 | 89.59 |")
    assert "| 1.23 | 75 s (reused) |" in body[0]
    assert "`crackrender tables 2 --quick`" in md and "CPU: test" in md and "**quick**" in md
    assert "IoU, Dice, mBA" in md and "cfd test (3 of 18 images)" in md
    t3 = render_table(TABLES[3], _fake_result(TABLES[3], long_edge=900))
    assert "| coarse mIoU ours | coarse mIoU paper |" in t3 and "| FPS ours | FPS paper |" in t3
    assert "| CBPRN | Probability heatmap | p in [0.3, 0.7] | 50.00 | / |" in t3 and "long edge of 900 px" in t3
    assert "(the FPS image is not scaled)" in t3  # 512x384 is within 900


# ------------------------------------------------------------------ the command


def test_cli_errors_are_one_line(tmp_path):
    missing = _cli("tables", "1", "--quick", "--out", tmp_path / "o", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: dataset folder not found: ../shared/data/cfd")


def test_shared_source_tests_on_cfd_and_deepcrack537_official_splits():
    from crackrender.paper.data import shared_source

    root = shared_dataset("cfd").parent
    src = shared_source(root)
    assert [(name, split) for name, _, split in src.test] == [("cfd", "test"), ("deepcrack537", "test")]
    assert [Path(e["root"]).name for e in src.train] == ["cfd", "deepcrack537", "crack500"]
    assert {e["split"] for e in src.train} == {"train"} and {e["split"] for e in src.val} == {"val"}
    assert len(load_test_sets(src.test, None)[1].indices) == 237  # DeepCrack537's official test split


@pytest.mark.parametrize("args, needle", [(("4",), "Tables 1, 2 and 3"), (("1", "--long-edge", "900"), "--long-edge applies"),
                                          (("1", "--data", "web"), "--data must be"), (("3", "--rows", "fcn"), "no row 'fcn'"),
                                          (("2", "--data", "synthetic", "--data-root", "x"), "--data-root applies")])
def test_cli_rejects_bad_arguments_before_any_work(tmp_path, args, needle):
    from typer.testing import CliRunner

    from crackrender.cli import app

    res = CliRunner().invoke(app, ["tables", *args, "--quick", "--out", str(tmp_path / "o")])
    assert isinstance(res.exception, CrackRenderError) and needle in str(res.exception)
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def table2_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tables")
    res = _cli("tables", "2", "--quick", "--data", "synthetic", "--out", out, "-q")
    assert res.returncode == 0, res.stderr[-3000:]
    return out, res


@pytest.mark.slow
def test_table2_quick_end_to_end_then_reuse(table2_run):
    out, first = table2_run
    md = (out / "table2.md").read_text()
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert len(rows) == 9
    for ln in rows:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        numbers = [float(c) for c in cells[4:13]]  # mIoU, Dice, mBA ours/paper, crack IoU, refined, FPS
        assert all(0 <= v <= 100 for v in numbers[:8]) and numbers[8] > 0, ln
    assert "`crackrender tables 2 --quick --data synthetic" in md and "synthetic test" in md
    result = json.loads((out / "table2.json").read_text())
    assert len(result["rows"]) == 9 and result["mode"] == "quick"
    assert {r["run"] for r in result["rows"]} == {"cbprn-k2"} and not result["rows"][0]["train"]["reused"]
    assert all(r["fps"]["fps"] > 0 and len(r["fps"]["times_s"]) == 3 for r in result["rows"])
    assert result["rows"][4]["predict"] == {"alpha": 0.3, "beta": 0.7}
    assert result["rows"][4]["paper"] == {"miou": 87.23, "dice": 93.56, "mba": 89.59}
    assert first.stderr.count("training cbprn") == 1  # one model for the nine rows
    model = out / "runs" / "cbprn-k2" / "model-best.safetensors"
    stamp = model.stat().st_mtime_ns

    again = _cli("tables", "2", "--quick", "--data", "synthetic", "--out", out, "-q", "--rows", "5,a0.4-b0.8")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing the finished run" in again.stderr and "training cbprn" not in again.stderr
    assert model.stat().st_mtime_ns == stamp
    result = json.loads((out / "table2.json").read_text())
    assert [r["key"] for r in result["rows"]] == ["a0.3-b0.7", "a0.4-b0.8"] and result["rows"][0]["train"]["reused"]


@pytest.mark.slow
def test_a_changed_config_is_refused_and_an_unfinished_run_resumes(table2_run):
    out, _ = table2_run
    folder = out / "runs" / "cbprn-k2"
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    changed = {**cfg, "optim": {**cfg["optim"], "lr": 0.5}}
    with pytest.raises(CrackRenderError, match=r"different config \(optim.lr differ"):
        ensure_trained(changed, out / "runs", log=lambda m: None)
    (folder / "paper_train.json").unlink()  # as if the process had died before finishing
    messages = []
    record = ensure_trained(cfg, out / "runs", log=messages.append)
    assert "resuming" in messages[0] and record["resumed"] and (folder / "paper_train.json").is_file()


@pytest.mark.slow
def test_table3_two_rows_with_long_edge_reuses_cbprn(table2_run):
    out, _ = table2_run
    res = _cli("tables", "3", "--quick", "--data", "synthetic", "--out", out, "-q", "--rows", "fcn18,cbprn",
               "--long-edge", "256")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "training pointrend" in res.stderr and "reusing the finished run" in res.stderr
    result = json.loads((out / "table3.json").read_text())
    fcn, cbprn = result["rows"]
    assert (fcn["key"], cbprn["key"]) == ("fcn18", "cbprn") and result["long_edge"] == 256
    assert fcn["coarse_long_edge"] == 256 and cbprn["coarse_long_edge"] is None and cbprn["train"]["reused"]
    for row in (fcn, cbprn):
        assert {"coarse_miou", "coarse_mba", "coarse_dice", "miou", "mba", "dice", "fps"} <= set(row["ours"])
        assert row["fps"]["fps"] > 0
    md = (out / "table3.md").read_text()
    assert "| PointRend | Coarse mask | FCN-18 |" in md and "long edge of 256 px" in md and "FPS image is scaled" in md
