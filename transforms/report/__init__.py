"""The dataset report: report.html (build), its HTML sections (html), its SVG figures (plots) and the examples of what was rejected or filtered (examples)."""
