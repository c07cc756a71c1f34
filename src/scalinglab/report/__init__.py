"""The report: figures of the papers (plots.py) and one self-contained HTML page (html.py)."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ScalingLabError


def read_summary(study_dir: Path) -> dict:
    """A finished study's summary.json, or one error line saying why there is none."""
    if not study_dir.is_dir() or not (study_dir / "study.sqlite").exists():
        raise ScalingLabError(f"{study_dir} is not a study directory (no study.sqlite)")
    summary_path = study_dir / "summary.json"
    if not summary_path.exists():
        raise ScalingLabError(f"{study_dir}: the study has not finished; re-run `scalinglab run` to complete it")
    try:
        return json.loads(summary_path.read_text())
    except json.JSONDecodeError:
        raise ScalingLabError(f"{summary_path} is corrupt; re-run `scalinglab run` to rewrite it") from None
