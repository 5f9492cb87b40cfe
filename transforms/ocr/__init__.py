"""OCR behind one interface: settings and model files (config, no OCR library), the engines (core), the Beam stage (beam), and character error rate (accuracy)."""
