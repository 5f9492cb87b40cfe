"""vlcurate: curation pipelines for vision-language training data.

The code lives in the top-level folders that ../shared/DESIGN.md lays out (pipelines/,
transforms/, taxonomy/, training/); setup.py installs them as subpackages of this package,
so they are imported as ``vlcurate.transforms`` and so on.
"""

__version__ = "0.1.0"
