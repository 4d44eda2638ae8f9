"""The one look of every report figure, and the helpers the plots share (no pyplot: figures are built directly).

Figures are :class:`matplotlib.figure.Figure` objects made without pyplot, so there is no global figure state and
nothing needs closing. The style is applied with ``rc_context`` (process-wide rcParams), so styled plotting and
:func:`save_figure` hold a lock: threads may build figures, one at a time. Saving uses the Agg canvas.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import FuncFormatter, MaxNLocator, StrMethodFormatter
from matplotlib.transforms import ScaledTranslation

P = ParamSpec("P")
R = TypeVar("R")
_RC_LOCK = threading.RLock()  # rc_context changes process-wide rcParams: one styled figure at a time

FIGSIZE: tuple[float, float] = (9.0, 4.0)  # 900 x 400 px at dpi 100: email width
DPI = 100
PAD_INCHES = 0.1  # the white margin around a saved figure (matplotlib's default for a tight bounding box)
DATE_FORMAT = "%d %b %Y"
EMPTY_TEXT = "no matured forecasts yet"

ACTUAL = "#222222"
MODEL = "#1f5fa8"
NAIVE = "#d9730d"
BAND80_ALPHA = 0.30
BAND95_ALPHA = 0.14
COVER80 = "#1f5fa8"
COVER95 = "#7b3fa0"
MISS = "#c0392b"
MODEL_COLORS: dict[str, str] = {"Model": MODEL, "lstm": MODEL, "naive": NAIVE, "drift": "#2e8b57",
                                "moving_average": "#7b3fa0", "ses": "#8c564b"}  # fmt: skip
OTHER_COLORS: tuple[str, ...] = ("#17becf", "#bcbd22", "#e377c2", "#7f7f7f")


def model_color(name: str, index: int = 0) -> str:
    """The colour of a model in every figure (a fixed one for the known models)."""
    return MODEL_COLORS.get(name, OTHER_COLORS[index % len(OTHER_COLORS)])


STYLE: dict[Any, Any] = {  # rcParams of every figure (keys typed Any: matplotlib types them as a Literal)
    "figure.figsize": FIGSIZE,
    "figure.dpi": DPI,
    "figure.facecolor": "white",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
}


def styled(func: Callable[P, R]) -> Callable[P, R]:
    """Run a plotting function inside the shared rcParams context."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _RC_LOCK, mpl.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper


def new_axes(ax: Axes | None, figsize: tuple[float, float] = FIGSIZE) -> Axes:
    """``ax`` itself, or the single axes of a fresh pyplot-free figure."""
    if ax is not None:
        return ax
    return Figure(figsize=figsize, dpi=DPI, layout="constrained").add_subplot()


def figure_of(ax: Axes) -> Figure:
    """The top-level figure that holds ``ax``."""
    fig = ax.get_figure(root=True)
    assert isinstance(fig, Figure)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (:func:`png_bytes`), creating parent folders; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png_bytes(fig))
    return out


def png_bytes(fig: Figure) -> bytes:
    """``fig`` as PNG bytes, exactly as :func:`save_figure` writes it.

    A figure with constrained layout (every figure here) is saved at its own size (900 px wide for email) with an
    edge pad of ``PAD_INCHES``: the layout already fits titles, labels and legends inside it, so the tight bounding
    box, which measures every artist once more (about a fifth of the saving time), is skipped. It is drawn in one
    pass, the layout computed as it draws, and encoded as ``savefig`` would: the same bytes (a test checks), without
    the layout-only pass ``savefig`` makes first (a report's 11 figures: 1.35 to 1.05 s of CPU,
    ``benchmarks/report.py``). Any other figure is cropped to a tight bounding box by ``savefig``.
    """
    buffer = io.BytesIO()
    engine = fig.get_layout_engine()
    with _RC_LOCK, mpl.rc_context(STYLE):  # ticks made while drawing read rcParams too
        if isinstance(engine, ConstrainedLayoutEngine):
            engine.set(w_pad=PAD_INCHES, h_pad=PAD_INCHES)
            canvas, facecolor, dpi = fig.canvas, fig.get_facecolor(), fig.dpi
            try:  # as savefig: white, at DPI, on an Agg canvas, all put back after
                fig.set_facecolor("white")
                fig.set_dpi(DPI)
                agg = FigureCanvasAgg(fig)
                agg.draw()
                mpl.image.imsave(buffer, agg.buffer_rgba(), format="png", origin="upper", dpi=DPI)
            finally:
                fig.set_canvas(canvas)
                fig.set_facecolor(facecolor)
                fig.set_dpi(dpi)
        else:
            fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=PAD_INCHES, facecolor="white")
    return buffer.getvalue()


def empty_message(ax: Axes, text: str = EMPTY_TEXT) -> None:
    """Write ``text`` in the middle of an axes that has no data to show."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="0.45")
    ax.set_xticks([])
    ax.set_yticks([])


def session_axis(ax: Axes, dates: Sequence[pd.Timestamp] | pd.DatetimeIndex) -> None:
    """Label integer session positions 0..n-1 on the x-axis with ``dates`` (no weekend or holiday gaps)."""
    index = pd.DatetimeIndex(dates)

    def label(x: float, _pos: int | None) -> str:
        i = int(round(x))
        if abs(x - i) > 1e-6 or not 0 <= i < len(index):
            return ""
        return index[i].strftime(DATE_FORMAT)

    ax.xaxis.set_major_locator(MaxNLocator(nbins=7, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(label))
    if len(index):
        ax.set_xlim(-0.5, len(index) - 0.5)


def legend_below(ax: Axes, handles: list[Artist] | None = None, labels: list[str] | None = None) -> None:
    """One row of legend under the x-axis label, so it never hides data."""
    if handles is None or labels is None:
        handles, labels = ax.get_legend_handles_labels()
    below = ax.transAxes + ScaledTranslation(0, -0.5, figure_of(ax).dpi_scale_trans)
    ncols = len(handles) if len(handles) <= 5 else (len(handles) + 1) // 2
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=below, ncols=ncols)


def interval_bands(
    ax: Axes, x: np.ndarray, lo80: np.ndarray, hi80: np.ndarray, lo95: np.ndarray, hi95: np.ndarray
) -> None:
    """Shade the 80% and 95% prediction intervals."""
    ax.fill_between(x, lo80, hi80, color=MODEL, alpha=BAND80_ALPHA, linewidth=0, label="80% interval")
    ax.fill_between(x, lo95, hi95, color=MODEL, alpha=BAND95_ALPHA, linewidth=0, label="95% interval")


def usd_axis(ax: Axes, label: str = "Close (USD)") -> None:
    """Thousands-separated dollar ticks and a label that names the unit."""
    ax.yaxis.set_major_formatter(StrMethodFormatter("${x:,.0f}"))
    ax.set_ylabel(label)


def positions(axis: pd.DatetimeIndex, dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Session positions of ``dates`` on ``axis`` (every date must be on it)."""
    return axis.get_indexer(pd.DatetimeIndex(dates))


def as_dates(values: pd.Series) -> pd.Series:
    """Timestamps without time zone (database ``timestamptz`` values and strings alike)."""
    dates = pd.to_datetime(values)
    return dates.dt.tz_localize(None) if dates.dt.tz is not None else dates


def require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ``ValueError`` naming the columns ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks column(s) {missing}; it has {list(frame.columns)}")
