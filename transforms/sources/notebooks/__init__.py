"""Notebook plots paired with the code that drew them: the reader (core) and its Beam stage (beam)."""
