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
        raise ScalingLabError(f"{study_dir}: the study has not finished; re-run `scalinglab run` to "
                              "complete it")
    try:
        summary = json.loads(summary_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ScalingLabError(f"{summary_path} is corrupt; re-run `scalinglab run` to rewrite it") from None
    problem = _summary_problem(summary)
    if problem:
        raise ScalingLabError(f"{summary_path} is not a study summary ({problem}); re-run `scalinglab run` "
                              "to rewrite it")
    return summary


def _summary_problem(s) -> str | None:
    """What makes a summary.json unusable, or None: the keys every reader relies on, with their types."""
    if not isinstance(s, dict):
        return "not a JSON object"
    if not isinstance(s.get("study"), str) or not isinstance(s.get("study_id"), str):
        return "no study name and id"
    if s.get("kind") == "batch-sweep":
        return None if isinstance(s.get("bcrit"), dict) else "a batch sweep without its B_crit fits"
    fit, h = s.get("fit"), s.get("holdout")
    if not isinstance(fit, dict) or not isinstance(fit.get("params"), dict):
        return "no fit"
    if not isinstance(h, dict):
        return "no held-out check"
    for key in ("predicted", "measured", "rel_error", "flops_budget", "n_params", "n_tokens"):
        if not isinstance(h.get(key), (int, float)) or isinstance(h.get(key), bool):
            return f"holdout.{key} is not a number"
    if h.get("interval") is not None and not (isinstance(h["interval"], list) and len(h["interval"]) == 2
                                              and all(isinstance(x, (int, float)) for x in h["interval"])):
        return "holdout.interval is not [lo, hi]"
    if not isinstance(s.get("allocations", []), list):
        return "allocations is not a list"
    law = s.get("law")
    if law is not None and not (isinstance(law, dict) and isinstance(law.get("form"), str)
                                and isinstance(law.get("why"), str) and isinstance(law.get("backtest"), list)
                                and all(isinstance(r, dict) and isinstance(r.get("form"), str)
                                        for r in law["backtest"])):
        return "law is not the chosen form with its backtest table"
    if not isinstance(h.get("candidates", {}), dict) or not all(
            isinstance(v, (int, float)) for v in h.get("candidates", {}).values()):
        return "holdout.candidates is not form -> predicted loss"
    return None
