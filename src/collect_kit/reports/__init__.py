"""Report runs: parameterized notebooks executed with papermill, exported to HTML and PDF.

``run_report`` (runner.py) is what ``collect-kit report run`` calls; ``format`` renders the
tables the notebooks show (locale, privacy suppression), ``text`` generates their prose.
"""
