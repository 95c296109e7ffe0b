"""The F-SEG commands as a user runs them: concepts, backbones, segment fseg, probe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unseg.cli.main import main
from unseg.concepts import load_bank
from unseg.data.synthetic import write_dataset
from unseg.io import read_label_map


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("he") / "data", n=3, kind="he_tile", size=96,
                         random_state=0)


@pytest.fixture(scope="module")
def bank(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bank") / "bank.npz"
    assert main(["concepts", "fit", "--backbone", "default", "--data", str(dataset),
                 "--k", "3,4", "--tile-size", "32", "--out", str(path)]) == 0
    return path


def test_concepts_fit_writes_one_bank_with_provenance(bank: Path) -> None:
    loaded = load_bank(bank)
    assert loaded.ks == [3, 4] and loaded.backbone == "default"
    assert loaded.get(4).shape == (4, loaded.channels)


def test_segment_fseg_with_a_bank(dataset: Path, bank: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "labels"
    assert main(["segment", "fseg", str(dataset), "--out", str(out), "--concepts", str(bank),
                 "--k", "4", "--assign", "fixed-h"]) == 0
    maps = sorted(p for p in out.glob("*.png") if not p.stem.endswith("_overlay"))
    assert len(maps) == 3 and len(list(out.glob("*_overlay.png"))) == 3
    labels = [read_label_map(p) for p in maps]
    assert all(lab.shape == (96, 96) and lab.max() < 4 for lab in labels)
    assert "segmented 3 of 3" in capsys.readouterr().out


def test_segment_fseg_without_a_bank_fits_one(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels"
    assert main(["segment", "fseg", str(dataset), "--out", str(out), "--k", "3",
                 "--tile-size", "32", "--assign", "cosine", "--n-concepts", "4"]) == 0
    assert all(read_label_map(p).max() < 3 for p in out.glob("synthetic-0?.png"))


def test_a_missing_bank_is_named_and_nothing_is_written(dataset: Path, tmp_path: Path,
                                                        capsys) -> None:
    out = tmp_path / "labels"
    code = main(["segment", "fseg", str(dataset), "--out", str(out), "--concepts",
                 str(tmp_path / "gone.npz")])
    assert code == 2
    assert "gone.npz: concept bank not found" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_concepts_list_and_backbones(capsys) -> None:
    assert main(["concepts", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("tcga-resnet50", "tcga-uni", "tcga-prov-gigapath"))
    assert main(["backbones"]) == 0
    rows = {line.split("|")[1].strip(): line for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ")}
    assert "| yes |" in rows["default"]  # embedded: always available
    assert "uni" in rows and "prov-gigapath" in rows and "ctranspath" in rows


def test_probe_reports_the_three_probes(dataset: Path, tmp_path: Path, capsys) -> None:
    report = tmp_path / "probe.json"
    assert main(["probe", "--train", str(dataset), "--test", str(dataset), "--k", "4",
                 "--tile-size", "32", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "Concept probe" in out and "Linear probe" in out and "Association probe" in out
    metrics = json.loads(report.read_text())
    # the paper's probe: per-image concepts of one class each, classified by their features
    assert sum(metrics["concept_examples"].values()) >= 2
    # (20 concepts of 144 feature cells each: small; nuclei concepts rarely pass the threshold)
    assert metrics["concept_probe"]["miou"] > 0.4
    assert metrics["concept_probe"]["per_class"]["1"]["iou"] > 0.7  # stroma
    # trained and tested on the same tiles: glass and stroma are learnt, the small nuclei less
    assert metrics["linear"]["miou"] > 0.5
    assert metrics["linear"]["per_class"]["0"]["iou"] > 0.8  # glass
    assert np.isfinite(metrics["association_probe"]["miou"])
