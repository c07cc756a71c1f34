"""A finished (or running) study as a Python object for notebooks: ``open_study(path)``.

Everything is read once, read-only, when it is opened (the store is not held open): DataFrames of the runs,
their eval curves, dense training curves and final-loss estimates; every saved fit (Approach 3, every other
law, the whole-curve laws) through the fit interface; the held-out check. ``plot_*`` return the report's
matplotlib figures; the object and every fit render as HTML in Jupyter (``_repr_html_``).
"""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from .errors import ScalingLabError


class Study:
    """One study directory, read: ``runs``, ``curves``, ``training_curves``, ``estimates``,
    ``source_losses`` (DataFrames),
    ``fits`` (key -> fit), ``fit`` (Approach 3), ``holdout`` (dict or None), ``summary`` (dict; {} for a
    study not finished). Read through studydir.StudyDir."""

    def __init__(self, path: str | Path):
        from .fit.curvelaws import curves_of_runs
        from .studydir import StudyDir
        study = StudyDir(path)
        self.path = study.path
        with study.store() as store:
            self.meta = store.meta()
            self.runs = store.runs()
            self.curves = store.curve_table().frame
            self.training_curves = store.training_curves()
            self.estimates = store.estimates()
            self.source_losses = store.source_losses()  # each eval's loss per validation source
        self._curve_runs = curves_of_runs(self.training_curves) if len(self.training_curves) else {}
        typed = study.summary_or_none()
        self.summary = dict(typed.raw) if typed is not None else {}
        self.fit = study.fit3()
        self.fits = study.all_fits()
        saved = study.curve_fits()
        self._curve_estimates = saved[1] if saved else None
        self.holdout = typed.holdout.raw if typed is not None and typed.holdout else None

    @property
    def name(self) -> str:
        return str(self.summary.get("study") or self.meta.get("study_id") or self.path.name)

    @property
    def finals(self) -> pd.DataFrame:
        """One row per finished grid run, as `scalinglab fit` reads it: run_id, N, D, loss, C, budget."""
        done = self.runs[(self.runs["role"] == "grid") & (self.runs["status"] == "done")]
        return pd.DataFrame({"run_id": done["run_id"], "N": done["n_params_total"].astype(float),
                             "D": done["n_tokens"].astype(float), "loss": done["val_loss"].astype(float),
                             "C": done["flops"].astype(float), "budget": done["budget"].astype(float)})

    # -- figures: the report's --------------------------------------------------------------------------
    def plot_curves(self):
        """Learning curves by model size with the compute envelope (Kaplan Fig. 1; Hoffmann Fig. 2)."""
        from .report import plots
        return plots.learning_curves(self.curves)

    def plot_isoflop(self):
        """IsoFLOP valleys with their parabolas and minima (Hoffmann Fig. 3)."""
        from .fit.chinchilla.approach1_2 import isoflop_minima
        from .report import plots
        try:
            minima, _ = isoflop_minima(self.finals)
        except ScalingLabError:
            minima = None
        return plots.isoflop_valleys(self.finals, minima)

    def plot_holdout(self):
        """The held-out run: predicted (with its interval) against measured."""
        from .report import plots
        return plots.holdout(self.holdout)

    def plot_curve_laws(self):
        """The whole-curve law per size over the measured curves (a study with curve_laws on)."""
        from .report import plots
        fits = [f for f in self.fits.values() if f.law == "multi-power"]
        return plots.curve_law_fits({"fits": fits, "runs": self._curve_runs} if fits else None)

    def plot_estimates(self):
        """Each run's final loss estimated from its first 30% / 50% against the measured one."""
        from .report import plots
        return plots.curve_estimates(self._curve_estimates)

    # -- display ----------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        done = int((self.runs["status"] == "done").sum())
        return f"<scalinglab Study {self.name!r}: {done}/{len(self.runs)} runs done, {len(self.fits)} fits>"

    def _repr_html_(self) -> str:
        counts = self.runs.groupby(["role", "status"]).size().unstack(fill_value=0)
        rows = [f"<h4>scalinglab study {html.escape(self.name)}</h4>",
                f"<p>{html.escape(str(self.path))}</p>", counts.to_html()]
        if self.holdout:
            h = self.holdout
            rows.append(f"<p>held-out run: predicted {h['predicted']:.4f}, measured {h['measured']:.4f} "
                        f"({100 * h['rel_error']:+.2f}%)</p>")
        if self.fit is not None:
            rows.append(self.fit._repr_html_())
        others = [k for k in self.fits if k != "chinchilla:3"]
        if others:
            rows.append(f"<p>other fits: {html.escape(', '.join(others))} (<code>.fits[key]</code>)</p>")
        return "\n".join(rows)


def open_study(path: str | Path) -> Study:
    """A study directory as a Study (see the module docstring)."""
    return Study(path)
