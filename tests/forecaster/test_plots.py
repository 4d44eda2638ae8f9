"""Report figures: each has its title, axis labels and legend, saves as a real PNG, and survives empty input."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from forecaster.data.calendar import next_sessions
from forecaster.data.sources import generate_prices
from forecaster.evaluation import metrics
from forecaster.plots import figures as plots
from forecaster.plots.style import DATE_FORMAT, EMPTY_TEXT

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _prices(n: int = 150) -> pd.DataFrame:
    return generate_prices(seed=0, n=n, start="2024-01-02")


def _forecast(prices: pd.DataFrame, horizon: int = 5) -> pd.DataFrame:
    last = float(prices["close"].iloc[-1])
    steps = np.arange(1, horizon + 1)
    sd = 0.02 * last * np.sqrt(steps)
    point = last * (1 + 0.002 * steps)
    return pd.DataFrame(
        {
            "as_of": prices.index[-1],
            "horizon": steps,
            "target_date": next_sessions(prices.index[-1], horizon),
            "naive": last,
            "point": point,
            "lo80": point - 1.28 * sd,
            "hi80": point + 1.28 * sd,
            "lo95": point - 1.96 * sd,
            "hi95": point + 1.96 * sd,
        }
    )


def _outcomes(n: int = 80, horizon: int = 3, seed: int = 1) -> pd.DataFrame:
    prices = _prices(n + horizon + 1)
    close, dates = prices["close"].to_numpy(), prices.index
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        for h in range(1, horizon + 1):
            point, sd = close[i] + rng.normal(0, 0.5), 0.02 * close[i] * np.sqrt(h)
            rows.append(
                {
                    "as_of": dates[i],
                    "target_date": dates[i + h],
                    "horizon": h,
                    "point": point,
                    "naive": close[i],
                    "actual": close[i + h],
                    "lo80": point - 1.28 * sd,
                    "hi80": point + 1.28 * sd,
                    "lo95": point - 1.96 * sd,
                    "hi95": point + 1.96 * sd,
                }
            )
    return pd.DataFrame(rows)


def _assert_png(fig: Figure, path: Path, min_bytes: int = 5_000) -> None:
    out = plots.save_figure(fig, path)
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes


def _assert_labelled(ax: Axes, title: str) -> None:
    assert title in ax.get_title(loc="left")
    assert ax.get_xlabel()
    assert ax.get_ylabel()


def _legend_texts(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def _tick_label(ax: Axes, position: float) -> str:
    return ax.xaxis.get_major_formatter()(position, None)


def test_forecast_fan_has_title_labels_bands_and_naive(tmp_path: Path) -> None:
    prices = _prices()
    fig = plots.plot_forecast_fan(prices, _forecast(prices))
    ax = fig.axes[0]
    _assert_labelled(ax, "Close price and forecast")
    assert "USD" in ax.get_ylabel()
    labels = _legend_texts(ax)
    for expected in ("Close", "Forecast", "80% interval", "95% interval", "Naive (last close)"):
        assert expected in labels
    _assert_png(fig, tmp_path / "fan.png")


def test_forecast_fan_x_axis_has_no_weekend_gap() -> None:
    prices = _prices()
    forecast = _forecast(prices)
    ax = plots.plot_forecast_fan(prices, forecast, sessions=120).axes[0]
    close_line = next(line for line in ax.get_lines() if line.get_label() == "Close")
    x = np.asarray(close_line.get_xdata())
    np.testing.assert_array_equal(x, np.arange(120))
    dates = prices.index[-120:]
    friday = next(i for i in range(len(dates) - 1) if dates[i].day_of_week == 4 and dates[i + 1].day_of_week == 0)
    assert _tick_label(ax, friday) == dates[friday].strftime(DATE_FORMAT)
    assert _tick_label(ax, friday + 1) == dates[friday + 1].strftime(DATE_FORMAT)
    fan = next(line for line in ax.get_lines() if line.get_label() == "Forecast")
    np.testing.assert_array_equal(np.asarray(fan.get_xdata()), np.arange(119, 125))
    assert _tick_label(ax, 120) == forecast["target_date"].iloc[0].strftime(DATE_FORMAT)


def test_forecast_fan_keeps_the_whole_95_interval_in_view() -> None:
    prices = _prices()
    forecast = _forecast(prices)
    bottom, top = plots.plot_forecast_fan(prices, forecast).axes[0].get_ylim()
    assert bottom <= forecast["lo95"].min()
    assert top >= forecast["hi95"].max()


def test_forecast_fan_refuses_a_forecast_without_interval() -> None:
    prices = _prices()
    forecast = _forecast(prices)
    forecast.loc[2, "lo95"] = np.nan
    with pytest.raises(ValueError, match=r"no interval at horizon\(s\) \[3\]"):
        plots.plot_forecast_fan(prices, forecast)


def test_forecast_fan_names_missing_columns() -> None:
    prices = _prices()
    with pytest.raises(ValueError, match="lacks column"):
        plots.plot_forecast_fan(prices, _forecast(prices).drop(columns=["hi80"]))


def test_track_record_has_title_labels_legend_and_gapless_axis(tmp_path: Path) -> None:
    outcomes = _outcomes()
    fig = plots.plot_track_record(outcomes, sessions=50)
    ax = fig.axes[0]
    _assert_labelled(ax, "Track record")
    labels = _legend_texts(ax)
    assert "Realised close" in labels and "80% interval" in labels
    assert any(label.startswith("Naive (RMSE $") for label in labels)
    actual = next(line for line in ax.get_lines() if line.get_label() == "Realised close")
    np.testing.assert_array_equal(np.asarray(actual.get_xdata()), np.arange(50))
    last_target = outcomes.loc[outcomes["horizon"] == 1, "target_date"].max()
    assert _tick_label(ax, 49) == last_target.strftime(DATE_FORMAT)
    _assert_png(fig, tmp_path / "track.png")


def test_rolling_skill_starts_at_zero_and_has_u2_axis_with_break_even(tmp_path: Path) -> None:
    fig = plots.plot_rolling_skill(_outcomes(), window=20)
    ax, twin = fig.axes
    _assert_labelled(ax, "Rolling 20-session RMSE")
    assert ax.get_ylabel() == "RMSE (USD)"
    assert ax.get_ylim()[0] == 0
    assert "U2" in twin.get_ylabel()
    assert any(np.allclose(line.get_ydata(), 1.0) for line in twin.get_lines())
    assert "Naive RMSE" in _legend_texts(ax)
    _assert_png(fig, tmp_path / "skill.png")


def test_rolling_skill_lines_match_a_hand_loop_and_u2_is_nan_where_naive_is_exact() -> None:
    outcomes = _outcomes(n=30)
    h1 = outcomes[outcomes["horizon"] == 1].reset_index(drop=True)
    h1.loc[:9, "actual"] = h1.loc[:9, "naive"]  # naive exact on the first 10 targets
    ax, twin = plots.plot_rolling_skill(h1, window=10).axes
    model = next(line for line in ax.get_lines() if "RMSE" in line.get_label() and "Naive" not in line.get_label())
    u2_line = next(line for line in twin.get_lines() if line.get_label().startswith("U2 = model"))
    for k, end in enumerate(range(9, 30)):
        window = h1.iloc[end - 9 : end + 1]
        sq = sum((a - p) ** 2 for a, p in zip(window["actual"], window["point"], strict=True))
        sq_naive = sum((a - n) ** 2 for a, n in zip(window["actual"], window["naive"], strict=True))
        assert model.get_ydata()[k] == pytest.approx(math.sqrt(sq / 10))
        if sq_naive == 0:
            assert math.isnan(u2_line.get_ydata()[k])
        else:
            assert u2_line.get_ydata()[k] == pytest.approx(math.sqrt(sq / sq_naive))
    assert math.isnan(u2_line.get_ydata()[0])


def test_rolling_skill_with_fewer_rows_than_window_says_so() -> None:
    ax = plots.plot_rolling_skill(_outcomes(n=10), window=20).axes[0]
    assert any("needs 20" in t.get_text() for t in ax.texts)


def test_calibration_plots_hand_computed_coverage_against_nominal(tmp_path: Path) -> None:
    outcomes = _outcomes()
    fig = plots.plot_calibration(outcomes)
    ax = fig.axes[0]
    _assert_labelled(ax, "Interval calibration")
    assert ax.get_ylim() == (0, 1)
    h2 = outcomes[outcomes["horizon"] == 2]
    expected = np.mean([lo <= y <= hi for lo, y, hi in zip(h2["lo80"], h2["actual"], h2["hi80"], strict=True)])
    line80 = next(line for line in ax.get_lines() if line.get_label() == "80% interval")
    assert line80.get_ydata()[1] == pytest.approx(expected)
    assert {"nominal 80%", "nominal 95%"} <= set(_legend_texts(ax))
    _assert_png(fig, tmp_path / "calibration.png")


def test_residuals_figure_has_histogram_and_time_panels(tmp_path: Path) -> None:
    fig = plots.plot_residuals(_outcomes())
    hist_ax, time_ax = fig.axes
    _assert_labelled(hist_ax, "Residuals")
    _assert_labelled(time_ax, "Residuals over time")
    assert "USD" in hist_ax.get_xlabel() and "USD" in time_ax.get_ylabel()
    assert any(label.startswith("Naive: mean") for label in _legend_texts(hist_ax))
    assert "Naive" in _legend_texts(time_ax)
    _assert_png(fig, tmp_path / "residuals.png")


def test_residuals_draws_into_a_given_pair_and_refuses_a_single_axes() -> None:
    fig = Figure()
    pair = fig.subplots(1, 2)
    assert plots.plot_residuals(_outcomes(), ax=tuple(pair)) is fig
    with pytest.raises(TypeError, match="two panels"):
        plots.plot_residuals(_outcomes(), ax=pair[0])


def test_training_full_fit_uses_log_scale_and_marks_best_epoch(tmp_path: Path) -> None:
    history = {"loss": list(np.geomspace(0.1, 0.01, 12)), "val_loss": list(np.geomspace(0.12, 0.02, 12))}
    fig = plots.plot_training(history, kind="full")
    ax = fig.axes[0]
    _assert_labelled(ax, "Training loss: full fit")
    assert ax.get_yscale() == "log"
    labels = _legend_texts(ax)
    assert {"Training loss", "Validation loss", "Best validation (epoch 12)"} <= set(labels)
    _assert_png(fig, tmp_path / "training.png")


def test_training_fine_tune_names_parent_and_works_without_validation() -> None:
    ax = plots.plot_training({"loss": [0.03, 0.02, 0.018]}, kind="finetune", parent="lstm-v3").axes[0]
    _assert_labelled(ax, "fine-tune of lstm-v3")
    assert _legend_texts(ax) == ["Fine-tune: training loss"]
    assert ax.get_xlabel() == "Epoch (fine-tunes have no validation split)"


def test_training_fine_tune_shows_the_full_fit_it_descends_from_for_scale(tmp_path: Path) -> None:
    base = {"loss": [0.9, 0.5, 0.4, 0.35], "val_loss": [1.0, 0.7, 0.6, 0.62]}
    fig = plots.plot_training({"loss": [0.33, 0.32, 0.31]}, kind="finetune", parent="version 7", base=base)
    ax = fig.axes[0]
    _assert_labelled(ax, "Training loss: fine-tune of version 7")
    labels = _legend_texts(ax)
    assert labels == ["Full fit: training loss", "Full fit: validation loss", "Fine-tune: training loss"]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0, "a 3x span is drawn on a linear axis from 0"
    _assert_png(fig, tmp_path / "finetune.png")
    full = plots.plot_training(base, kind="full", base={"loss": [5.0]}).axes[0]
    assert "Full fit: training loss" not in _legend_texts(full), "a full fit has no base curves"


def test_training_with_non_positive_loss_stays_linear_from_zero() -> None:
    ax = plots.plot_training({"loss": [0.5, 0.0]}, kind="full").axes[0]
    assert ax.get_yscale() == "linear"
    assert ax.get_ylim()[0] == 0


def test_actual_vs_predicted_on_dates_and_on_integer_steps(tmp_path: Path) -> None:
    close = _prices(60)["close"]
    fig = plots.plot_actual_vs_predicted(close, close.shift(1), title="Backtest", ylabel="Close (USD)")
    ax = fig.axes[0]
    _assert_labelled(ax, "Backtest")
    assert _legend_texts(ax)[0] == "Actual"
    assert _tick_label(ax, 0) == close.index[0].strftime(DATE_FORMAT)
    _assert_png(fig, tmp_path / "avp.png")
    steps = pd.Series(np.sin(np.arange(100) / 8))
    ax = plots.plot_actual_vs_predicted(steps, steps * 0.9, title="Sine experiment").axes[0]
    _assert_labelled(ax, "Sine experiment")
    assert ax.get_ylabel() == "value"


EMPTY_CASES: dict[str, Callable[[pd.DataFrame], Figure]] = {
    "track": plots.plot_track_record,
    "skill": plots.plot_rolling_skill,
    "calibration": plots.plot_calibration,
    "residuals": plots.plot_residuals,
}


@pytest.mark.parametrize("name", sorted(EMPTY_CASES))
@pytest.mark.parametrize("frame", [pd.DataFrame(), _outcomes(n=5).assign(actual=np.nan)], ids=["no-rows", "unmatured"])
def test_outcome_figures_on_empty_input_say_no_matured_yet(name: str, frame: pd.DataFrame, tmp_path: Path) -> None:
    fig = EMPTY_CASES[name](frame)
    for ax in fig.axes:
        assert ax.get_title(loc="left") and ax.get_xlabel() and ax.get_ylabel()
        assert [t.get_text() for t in ax.texts] == [EMPTY_TEXT]
    _assert_png(fig, tmp_path / f"{name}.png", min_bytes=1_000)


def test_empty_fan_and_training_and_series_still_draw_labelled_axes(tmp_path: Path) -> None:
    figures = [
        plots.plot_forecast_fan(pd.DataFrame(), pd.DataFrame()),
        plots.plot_training({}, kind="full"),
        plots.plot_actual_vs_predicted(pd.Series(dtype=float), pd.Series(dtype=float), title="Empty"),
    ]
    for i, fig in enumerate(figures):
        ax = fig.axes[0]
        assert ax.get_title(loc="left") and ax.get_xlabel() and ax.get_ylabel()
        assert len(ax.texts) == 1
        _assert_png(fig, tmp_path / f"empty{i}.png", min_bytes=1_000)


def test_fan_without_a_forecast_still_shows_history() -> None:
    ax = plots.plot_forecast_fan(_prices(), pd.DataFrame()).axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["Close"]


def test_given_axes_are_drawn_into_and_their_figure_returned() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.plot_calibration(_outcomes(), ax=ax) is fig
    assert ax.get_title(loc="left").startswith("Interval calibration")


def test_outcomes_of_several_models_are_refused() -> None:
    outcomes = pd.concat([_outcomes().assign(model="lstm"), _outcomes().assign(model="drift")])
    with pytest.raises(ValueError, match=r"2 models \['drift', 'lstm'\]"):
        plots.plot_track_record(outcomes)


def test_png_bytes_are_what_save_figure_writes(tmp_path: Path) -> None:
    fig = plots.plot_calibration(_outcomes())
    data = plots.png_bytes(fig)
    assert data[:8] == PNG_MAGIC
    assert plots.save_figure(fig, tmp_path / "same.png").read_bytes() == data


@pytest.mark.parametrize("draw", ["fan", "residuals", "rolling_skill"])
def test_png_bytes_draw_once_yet_equal_matplotlibs_own_savefig(draw: str) -> None:
    """png_bytes renders a constrained-layout figure in one pass; savefig lays it out in a pass of its own first.
    The PNG must be the same, byte for byte."""
    import io

    import matplotlib as mpl

    from forecaster.plots.style import DPI, PAD_INCHES, STYLE

    prices = _prices()
    build = {"fan": lambda: plots.plot_forecast_fan(prices, _forecast(prices)),
             "residuals": lambda: plots.plot_residuals(_outcomes()),
             "rolling_skill": lambda: plots.plot_rolling_skill(_outcomes(), window=5)}[draw]  # fmt: skip
    ours = plots.png_bytes(build())
    fig = build()
    fig.get_layout_engine().set(w_pad=PAD_INCHES, h_pad=PAD_INCHES)
    buffer = io.BytesIO()
    with mpl.rc_context(STYLE):
        fig.savefig(buffer, format="png", dpi=DPI, pad_inches=PAD_INCHES, facecolor="white")
    assert ours == buffer.getvalue()


def test_png_bytes_leaves_the_figure_as_it_was() -> None:
    """As savefig does: the figure keeps its canvas, face colour and dpi, and saves the same bytes again."""
    fig = plots.plot_calibration(_outcomes())
    fig.set_facecolor("0.9")
    fig.set_dpi(72)
    before = (fig.canvas, fig.get_facecolor(), fig.dpi)
    first = plots.png_bytes(fig)
    assert (fig.canvas, fig.get_facecolor(), fig.dpi) == before
    assert plots.png_bytes(fig) == first


@pytest.mark.parametrize("draw", ["fan", "residuals"])
def test_a_saved_figure_keeps_its_email_size_and_every_text_inside(draw: str) -> None:
    """Saved at its own size (900 px wide), not cropped to a tight box (an extra measuring pass), and the
    constrained layout keeps every title, label, tick label and legend entry inside the picture."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    prices = _prices()
    fig = plots.plot_forecast_fan(prices, _forecast(prices)) if draw == "fan" else plots.plot_residuals(_outcomes())
    width, height = (round(v * fig.dpi) for v in fig.get_size_inches())
    assert Image.open(io.BytesIO(plots.png_bytes(fig))).size == (width, height)
    renderer = FigureCanvasAgg(fig).get_renderer()  # measures the layout that the save above computed
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]  # what each axes draws: titles, labels, ticks, legend
    boxes += [artist.get_window_extent(renderer) for artist in [*fig.legends, *fig.texts]]
    assert len(boxes) >= len(fig.axes) >= 1
    for box in boxes:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, box


def test_save_figure_creates_parent_folders(tmp_path: Path) -> None:
    out = plots.save_figure(plots.plot_calibration(_outcomes()), tmp_path / "a" / "b" / "c.png")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_time_zone_aware_dates_from_the_database_are_accepted() -> None:
    prices = _prices()
    forecast = _forecast(prices).assign(
        origin=lambda f: f["as_of"].dt.tz_localize("UTC"), target_date=lambda f: f["target_date"].dt.tz_localize("UTC")
    )
    ax = plots.plot_forecast_fan(prices, forecast).axes[0]
    assert _tick_label(ax, 120) == forecast["target_date"].iloc[0].strftime(DATE_FORMAT)
    outcomes = _outcomes().assign(target_date=lambda f: f["target_date"].dt.tz_localize("UTC"))
    assert plots.plot_track_record(outcomes).axes[0].get_lines()


# -- issue #20 item 9: the plots a quant asks for ------------------------------------------------------------


INTERVALS = ("lo80", "hi80", "lo95", "hi95")


def _models(n: int = 60) -> pd.DataFrame:
    """The same origins forecast by an LSTM stand-in, naive, drift and a moving average (a backtest's frame)."""
    base = _outcomes(n=n, horizon=5)
    shifted = {"lstm": 0.0, "naive": None, "drift": 0.3, "moving_average": 4.0}
    frames = []
    for name, shift in shifted.items():
        point = base["naive"] if shift is None else base["point"] + shift
        frames.append(base.assign(model=name, point=point))
    return pd.concat(frames, ignore_index=True)


def test_forecast_zoom_shows_the_last_20_sessions_the_forecast_and_its_last_bands(tmp_path: Path) -> None:
    prices = _prices()
    forecast = _forecast(prices)
    fig = plots.plot_forecast_zoom(prices, forecast)
    ax = fig.axes[0]
    close = next(line for line in ax.get_lines() if line.get_label() == "Close")
    np.testing.assert_array_equal(np.asarray(close.get_xdata()), np.arange(20))
    assert close.get_marker() == "o" and "Last 20 sessions and the next 5" in ax.get_title(loc="left")
    assert {t.get_text() for t in ax.texts} == {f"${forecast[c].iloc[-1]:,.2f}" for c in ("point", *INTERVALS)}
    _assert_png(fig, tmp_path / "zoom.png")


def test_loss_differential_is_the_running_sum_of_squared_error_differences(tmp_path: Path) -> None:
    outcomes = _outcomes(n=40)
    fig = plots.plot_loss_differential(outcomes)
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    h1 = outcomes[outcomes["horizon"] == 1].sort_values("target_date")
    total, expected = 0.0, []
    for r in h1.itertuples():
        total += (r.actual - r.point) ** 2 - (r.actual - r.naive) ** 2
        expected.append(total)
    np.testing.assert_allclose(line.get_ydata(), expected)
    stat, p = metrics.diebold_mariano(h1["actual"], h1["point"], h1["naive"])
    assert _legend_texts(ax) == [f"Model: DM {stat:+.2f}, p {p:.2g}"]
    _assert_png(fig, tmp_path / "dm.png")


def test_interval_width_draws_half_widths_against_the_realised_move_and_counts_misses(tmp_path: Path) -> None:
    outcomes = _outcomes(n=40)
    fig = plots.plot_interval_width(outcomes)
    ax = fig.axes[0]
    h1 = outcomes[outcomes["horizon"] == 1].sort_values("target_date")
    width80 = next(line for line in ax.get_lines() if line.get_label() == "Model 80%")
    np.testing.assert_allclose(width80.get_ydata(), np.log(h1["hi80"] / h1["lo80"]) / 2)
    misses = int((~h1["actual"].between(h1["lo80"], h1["hi80"])).sum())
    assert f"|return| outside ({misses} of 40)" in _legend_texts(ax)
    moves = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections])
    np.testing.assert_allclose(np.sort(moves), np.sort(np.abs(np.log(h1["actual"] / h1["naive"]))))
    _assert_png(fig, tmp_path / "width.png")


def test_pit_histogram_counts_closes_per_quantile_bin_with_binomial_bands(tmp_path: Path) -> None:
    outcomes = _outcomes(n=80)
    fig = plots.plot_pit_histogram(outcomes)
    ax = fig.axes[0]
    h1 = outcomes[outcomes["horizon"] == 1]
    bins = [0, 0, 0, 0, 0, 0]
    for r in h1.itertuples():
        k = (r.actual >= r.lo95) + (r.actual >= r.lo80) + (r.actual >= r.point) + (r.actual > r.hi80)
        bins[k + (r.actual > r.hi95)] += 1
    widths = np.diff([0, 0.025, 0.1, 0.5, 0.9, 0.975, 1])
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, np.array(bins) / (80 * widths))
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(stats.binom.ppf(0.025, 80, 0.025) / (80 * 0.025))
    assert band.max() == pytest.approx(stats.binom.ppf(0.975, 80, 0.025) / (80 * 0.025))
    assert "n = 80" in ax.get_title(loc="left")
    _assert_png(fig, tmp_path / "pit.png")


def test_track_record_at_horizon_5_plots_the_5_sessions_ahead_forecasts() -> None:
    outcomes = _outcomes(n=40, horizon=5)
    ax = plots.plot_track_record(outcomes, horizon=5).axes[0]
    assert "5-sessions-ahead" in ax.get_title(loc="left")
    h5 = outcomes[outcomes["horizon"] == 5].sort_values("target_date")
    actual = next(line for line in ax.get_lines() if line.get_label() == "Realised close")
    np.testing.assert_allclose(actual.get_ydata(), h5["actual"])


def test_calibration_shades_the_binomial_band_of_honest_intervals() -> None:
    outcomes = _outcomes(n=50)
    ax = plots.plot_calibration(outcomes).axes[0]
    labels = _legend_texts(ax)
    assert {"95% binomial band around 80%", "95% binomial band around 95%"} <= set(labels)
    band80 = next(c for c in ax.collections if c.get_label() == "95% binomial band around 80%")
    y = band80.get_paths()[0].vertices[:, 1]
    assert y.min() == pytest.approx(stats.binom.ppf(0.025, 50, 0.8) / 50)
    assert y.max() == pytest.approx(stats.binom.ppf(0.975, 50, 0.8) / 50)


def test_backtest_figures_show_every_baseline(tmp_path: Path) -> None:
    forecasts = _models()
    figures = plots.backtest_figures(forecasts, histories=[{"loss": [0.5, 0.4], "val_loss": [0.6, 0.5]}])
    assert set(figures) == {*plots.BACKTEST_FIGURES, "training.png"}
    for name in ("rolling_u2.png", "loss_differential.png", "interval_width.png"):
        labels = " ".join(_legend_texts(figures[name].axes[0]))
        for model in ("lstm", "drift", "moving_average"):
            assert model in labels, f"{model} missing from {name}"
    for ax in figures["calibration.png"].axes:
        assert {"lstm", "naive", "drift", "moving_average"} <= set(_legend_texts(ax))
    titles = [ax.get_title(loc="left") for ax in figures["pit.png"].axes if ax.get_visible()]
    assert [t.split(" of ")[1].split(",")[0] for t in titles] == ["lstm", "naive", "drift", "moving_average"]
    for name, fig in figures.items():
        _assert_png(fig, tmp_path / name, min_bytes=1_000)


def test_backtest_figures_keep_the_targets_the_summary_scores() -> None:
    forecasts = _models()
    start, end = forecasts["target_date"].sort_values().iloc[[100, -100]]
    figures = plots.backtest_figures(forecasts, {"start": str(start.date()), "end": str(end.date())})
    line = figures["loss_differential.png"].axes[0].get_lines()[0]
    h1 = forecasts[(forecasts["horizon"] == 1) & (forecasts["model"] == "lstm")]
    assert len(line.get_ydata()) == int(h1["target_date"].between(start, end).sum())


@pytest.mark.parametrize(
    "draw", [plots.plot_loss_differential, plots.plot_interval_width, plots.plot_pit_histogram, plots.plot_rolling_u2]
)
def test_quant_figures_on_empty_input_say_so(draw: Callable[[pd.DataFrame], Figure], tmp_path: Path) -> None:
    ax = draw(pd.DataFrame()).axes[0]
    assert ax.get_title(loc="left") and ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.texts] == [EMPTY_TEXT]
