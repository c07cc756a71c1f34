"""report/plots.py: figures laid out in full whatever the length of what they say."""
import warnings

from scalinglab.report.html import png_bytes
from scalinglab.report.plots import holdout


def test_the_held_out_figure_keeps_its_axes_with_the_studys_long_interval_label():
    """The study's interval label (~110 characters) as a legend inside a 5-inch figure collapsed the axes:
    matplotlib gave up the layout (a UserWarning) and drew the legend over a squeezed plot."""
    h = {"predicted": 1.3377, "measured": 1.3601, "rel_error": -0.0165, "flops_budget": 1.6e13,
         "interval": [1.2739, 1.4091], "fit_interval": [1.3222, 1.3665],
         "interval_kind": "95%: bootstrap of the law, widened by run-to-run noise and by the form's backtest "
                          "error at this extrapolation"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied" would raise here
        fig = holdout(h)
        png = png_bytes(fig)
    ax = fig.axes[0]
    assert ax.get_position().width > 0.6 and ax.get_position().height > 0.4  # of the figure
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
