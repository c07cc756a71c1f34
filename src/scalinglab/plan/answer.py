"""What `plan` answers (predict.py makes it; a study keeps its allocations as it; studydir.py reads them
back): one typed answer for a budget, a study's model family, and a point."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Plan:
    """One answer of `plan`: a compute-optimal model for a budget (``kind`` "budget": C = 6ND and the law's
    closed form or numeric optimum; "family": the model family's shape the law puts lowest, in exact FLOPs,
    with ``spec`` the run to train) or the loss of a given model ("point"). ``interval`` holds the law's
    bootstrap interval of each quantity ({"n_params", "n_tokens", "loss": [lo, hi]}),
    ``prediction_interval`` the loss's for one new run. ``to_dict()`` is the JSON `plan --json` prints."""

    kind: str
    law: str
    n_params: float
    n_tokens: float
    flops: float | None = None
    loss: float | None = None
    note: str = ""
    shape: dict | None = None
    interval: dict | None = None
    prediction_interval: dict | None = None
    interval_kinds: dict | None = None
    extrapolation: float | dict | None = None  # the budget's factor past the data, or each input's
    flop_convention: str | None = None
    warnings: tuple[str, ...] = ()
    spec: object = field(default=None, compare=False)  # "family": the RunSpec of the planned run

    @property
    def tokens_per_param(self) -> float:
        return self.n_tokens / self.n_params

    def __getitem__(self, key: str):
        """``plan["loss"]``: the JSON's entries, as scripts read the dicts plan returned before."""
        return self.to_dict()[key]

    @classmethod
    def from_dict(cls, d, kind: str = "family") -> "Plan":
        """A plan as saved (a study summary's allocations): raises ValueError naming what is missing."""
        if not isinstance(d, dict):
            raise ValueError("a plan is not an object")
        n, t = d.get("n_params", d.get("n_opt")), d.get("n_tokens", d.get("d_opt"))
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in (d.get("flops"), n, t, d.get("loss"))):
            raise ValueError("an allocation lacks flops, n_params, n_tokens or loss")
        return cls(kind, d.get("law", ""), n, t, flops=d["flops"], loss=d["loss"], note=d.get("note", ""),
                   shape=d.get("shape"), interval=d.get("interval"),
                   prediction_interval=d.get("prediction_interval"),
                   extrapolation=d.get("extrapolation"), flop_convention=d.get("flop_convention"),
                   warnings=tuple(d.get("warnings", ())))

    def loss_interval(self) -> tuple[float, float] | None:
        """The loss's interval for one new run where known, else the law's."""
        iv = (self.prediction_interval or self.interval or {}).get("loss")
        return tuple(iv) if iv else None

    def to_dict(self) -> dict:
        out = {"law": self.law}
        if self.flops is not None:
            out["flops"] = self.flops
        out |= {"n_params": self.n_params, "n_tokens": self.n_tokens}
        if self.loss is not None:
            out["loss"] = self.loss
        out["tokens_per_param"] = self.tokens_per_param
        if self.kind == "point":  # the loss of one model: its intervals are the loss's, as [lo, hi]
            out["flops_6nd"] = 6 * self.n_params * self.n_tokens
            if self.interval:
                out |= {"interval": list(self.interval["loss"]),
                        "prediction_interval": list(self.prediction_interval["loss"]),
                        "interval_kinds": dict(self.interval_kinds or {})}
        else:
            for key in ("note", "shape", "interval", "prediction_interval"):
                if getattr(self, key):
                    out[key] = getattr(self, key)
        if self.extrapolation is not None:
            out["extrapolation"] = self.extrapolation
        if self.flop_convention:
            out["flop_convention"] = self.flop_convention
        out["warnings"] = list(self.warnings)
        return out
