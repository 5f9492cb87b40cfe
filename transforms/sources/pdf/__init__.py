"""PDF pages and their figures: settings and work items (config, no PyMuPDF), page rendering (core), figure crops (figures) and chart data (chart_data), and the Beam stages (beam)."""
