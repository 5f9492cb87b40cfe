"""The dataset report: report.html (build), its HTML sections (html) and its SVG figures (plots)."""
