"""The report: figures of the papers (plots.py) and one self-contained HTML page (html.py)."""
from __future__ import annotations

