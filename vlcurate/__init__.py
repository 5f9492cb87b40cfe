"""vlcurate: curation pipelines for vision-language training data.

The code lives in four top-level folders (pipelines/, transforms/, taxonomy/, training/); this
package holds a symbolic link to each, so they are imported as ``vlcurate.transforms`` and so on.
"""

__version__ = "0.1.0"
