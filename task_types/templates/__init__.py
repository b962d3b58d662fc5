"""HTML fragments of the built-in task types (data only).

A package rather than a plain folder so that setuptools' ``*.html`` package
data reaches wheels and importlib.resources can find the files.
"""
