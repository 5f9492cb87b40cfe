"""Installs vlcurate and its `vlcurate` command; also Beam's --setup_file for Dataflow workers.

The code lives in top-level folders (see ../shared/DESIGN.md); they install as subpackages of
``vlcurate`` so that nothing generic like ``transforms`` lands at the top of site-packages.
"""

import pathlib

from setuptools import setup

HERE = pathlib.Path(__file__).parent
FOLDERS = ("pipelines", "transforms", "taxonomy", "training")


def requirements():
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    name="vlcurate",
    version="0.1.0",
    description="Curation pipelines for vision-language training data (DeepSeek-VL style) on Apache Beam",
    python_requires=">=3.11",
    packages=["vlcurate", *(f"vlcurate.{folder}" for folder in FOLDERS)],
    package_dir={"vlcurate": "vlcurate", **{f"vlcurate.{folder}": folder for folder in FOLDERS}},
    # The bundled taxonomy is data the labeler loads at run time (also on Dataflow workers).
    package_data={"vlcurate.taxonomy": ["*.yaml"]},
    install_requires=requirements(),
    entry_points={"console_scripts": ["vlcurate = vlcurate.pipelines.cli:main"]},
)
