"""NiiVue comes from the pinned npm package, installed at set-up; a missing bundle is one clear line."""

import json

import numpy as np
import pytest

from tests.conftest import REPO
from trabecula import Volume
from trabecula.cli import main
from trabecula.errors import InputError
from trabecula.io import write_volume
from trabecula.render.viewer import assets


def test_package_json_pins_the_version_the_viewer_is_written_against():
    pkg = json.loads((REPO / "package.json").read_text())
    lock = json.loads((REPO / "package-lock.json").read_text())
    assert pkg["dependencies"]["@niivue/niivue"] == assets.NIIVUE_VERSION  # exact pin, no range
    entry = lock["packages"]["node_modules/@niivue/niivue"]
    assert entry["version"] == assets.NIIVUE_VERSION and entry["integrity"].startswith("sha512-")


def test_installed_bundle_is_the_self_contained_umd_build():
    path = assets.require_assets()
    head = path.read_text(encoding="utf-8")[:400]
    assert "niivue={}" in head or "sA.niivue" in head  # UMD: defines the global `niivue`
    info = json.loads(assets.NIIVUE_INFO.read_text())
    assert info["version"] == assets.NIIVUE_VERSION and info["license"] == "BSD-2-Clause"
    assert "BSD 2-Clause" in assets.NIIVUE_LICENSE.read_text()


def _fake_niivue(root, version):
    pkg = root / "@niivue" / "niivue"
    (pkg / "dist").mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"version": version, "license": "BSD-2-Clause"}))
    (pkg / "dist" / "niivue.umd.js").write_text("(function(sA,qA){qA(sA.niivue={})})(this,function(sA){});")
    return root


def test_install_assets_checks_the_version_and_copies_atomically(tmp_path):
    good = _fake_niivue(tmp_path / "a", assets.NIIVUE_VERSION)
    out = assets.install_assets(good, dest=tmp_path / "vendor")
    assert out.read_text().startswith("(function(sA") and (tmp_path / "vendor" / "NIIVUE-LICENSE.txt").exists()
    assert not list((tmp_path / "vendor").glob(".tmp-*"))
    old = _fake_niivue(tmp_path / "b", "0.1.0")
    with pytest.raises(InputError, match="needs " + assets.NIIVUE_VERSION):
        assets.install_assets(old, dest=tmp_path / "vendor2")
    with pytest.raises(InputError, match="npm ci"):
        assets.install_assets(tmp_path / "nothing", dest=tmp_path / "vendor3")


def test_missing_bundle_gives_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(assets, "NIIVUE_JS", tmp_path / "absent" / "niivue.umd.js")
    with pytest.raises(InputError, match="npm ci"):
        assets.require_assets()
    vol = write_volume(Volume(np.zeros((4, 4, 4), np.int16), 1.0, units="HU"), tmp_path / "v.nii.gz")
    code = main(["view", str(vol), "--no-browser"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "NiiVue" in err and "./dev" in err
