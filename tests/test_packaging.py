"""Packaging: the sdist that Dataflow's --setup_file ships holds every sub-package and module of
the checkout (package discovery, not a hand list), one version everywhere, and `vlcurate --version`."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tarfile

import pytest
from apache_beam.runners.portability.stager import Stager

import vlcurate
from fixtures import REPO

CODE = ("pipelines", "transforms", "taxonomy", "training")


def checkout_modules() -> set[str]:
    """Every module of the four code folders, as its path inside the package (vlcurate/...)."""
    return {
        f"vlcurate/{path.relative_to(REPO).as_posix()}"
        for folder in CODE for path in (REPO / folder).rglob("*.py") if "__pycache__" not in path.parts
    }


def test_every_code_folder_is_a_package_linked_under_vlcurate():
    for folder in CODE:
        assert (REPO / "vlcurate" / folder).resolve() == (REPO / folder).resolve()
        for sub in (REPO / folder).rglob("*"):
            if sub.is_dir() and "__pycache__" not in sub.parts and any(sub.glob("*.py")):
                assert (sub / "__init__.py").is_file(), f"{sub} has modules but no __init__.py: discovery would skip it"


@pytest.mark.e2e
def test_the_sdist_dataflow_stages_holds_every_module(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    # The same call Beam's stager makes for --setup_file ./setup.py when it submits a job.
    sdist = Stager._build_setup_package(str(REPO / "setup.py"), str(tmp_path))
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    missing = checkout_modules() - names
    assert not missing, f"not in the sdist: {sorted(missing)}"
    assert "vlcurate/taxonomy/deepseek_vl.yaml" in names  # data the labeler loads on workers
    assert {"vlcurate/taxonomy/desk/templates/desk.html", "vlcurate/taxonomy/desk/static/desk.js",
            "vlcurate/taxonomy/desk/static/desk.css"} <= names  # the review desk's page
    assert f"vlcurate-{vlcurate.__version__}.tar.gz" in sdist


def test_one_version_everywhere():
    assert importlib.metadata.version("vlcurate") == vlcurate.__version__
    done = subprocess.run([sys.executable, "-m", "vlcurate.pipelines.cli", "--version"],
                          capture_output=True, text=True, check=True)
    assert done.stdout == f"vlcurate {vlcurate.__version__}\n"
