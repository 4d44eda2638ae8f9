"""Presets: the seed architectures are reproduced exactly, and unknown names are rejected clearly."""

import io

import pytest

from forecaster.errors import ConfigError
from forecaster.models.networks import build_model
from forecaster.models.presets import PRESETS, Preset, get_preset


def test_seed001_has_exactly_11851_parameters_and_summary_shows_it():
    preset = get_preset("seed001")
    model = build_model(preset, n_features=len(preset.features), horizon=1)
    buffer = io.StringIO()
    model.summary(print_fn=lambda line, **_: buffer.write(line + "\n"))
    assert len(preset.features) == 8
    assert model.count_params() == 11_851
    assert "11,851" in buffer.getvalue()
    assert [type(layer).__name__ for layer in model.layers] == ["LSTM", "Dropout", "Dense"]
    assert model.layers[0].activation.__name__ == "relu"


def test_seed000_is_two_512_lstms_with_dense_head():
    preset = get_preset("seed000")
    model = build_model(preset, n_features=6, horizon=1)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["LSTM", "LSTM", "Dense", "Dropout", "BatchNormalization", "Dense"]
    assert [layer.units for layer in model.layers if type(layer).__name__ == "LSTM"] == [512, 512]
    assert preset.window == 5 and preset.scaler == "minmax" and preset.target == "price"
    assert "sharpe_252" in preset.features and preset.epochs == 300 and preset.batch_size is None


def test_seed002_is_lstm50_tanh_dense1_window20():
    preset = get_preset("seed002")
    model = build_model(preset, n_features=1, horizon=1)
    assert [type(layer).__name__ for layer in model.layers] == ["LSTM", "Dense"]
    assert model.layers[0].units == 50 and model.layers[0].activation.__name__ == "tanh"
    assert preset.window == 20 and preset.epochs == 20 and preset.batch_size == 32


def test_default_uses_tanh_without_recurrent_dropout_for_cudnn():
    preset = get_preset("default")
    model = build_model(preset, n_features=len(preset.features), horizon=5)
    lstm = model.layers[0]
    assert lstm.activation.__name__ == "tanh" and lstm.recurrent_dropout == 0


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown preset 'bogus': choose one of default, seed000"):
        get_preset("bogus")


def test_preset_round_trips_through_dict_and_fingerprint_tracks_config():
    for preset in PRESETS.values():
        assert Preset.from_dict(preset.to_dict()) == preset
    base = get_preset("default")
    assert base.fingerprint() == Preset.from_dict(base.to_dict()).fingerprint()
    assert base.replace(window=31).fingerprint() != base.fingerprint()


def test_fields_added_later_leave_the_fingerprint_alone_until_they_are_set():
    import hashlib
    import json

    from forecaster.models.presets import LATER_FIELDS, get_preset

    base = get_preset("default_v1")  # every later field at its default
    before = {k: v for k, v in base.to_dict().items() if k not in LATER_FIELDS and k != "extras"}
    old_fingerprint = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:12]  # as before them
    assert base.fingerprint() == old_fingerprint
    assert base.replace(scale_target="range").fingerprint() != base.fingerprint()
    assert base.replace(scale_blend=0.5).fingerprint() != base.fingerprint()
    assert base.replace(quantile_norm="range").fingerprint() != base.fingerprint()
    assert base.replace(interval="quantile").fingerprint() != base.fingerprint()


def test_default_v1_keeps_the_previous_default_reproducible():
    old = get_preset("default_v1")
    assert old.features == ("log_return", "log_range", "log_body", "volume_change", "vol_20")
    assert (old.interval, old.scale_target, old.scale_blend, old.lstm_units, old.shrink) == (
        "head", "abs_return", 0.0, (16,), True,
    )  # fmt: skip
    previous = old.replace(name="default", description="Ours: multi-horizon log-return LSTM on scale-free features, "
                           "tanh (cuDNN-eligible).")  # fmt: skip
    assert previous.fingerprint() == "c2d0cfa64eb0", "the fingerprint of `default` before issue #19"


def test_default_v2_keeps_the_scale_head_default_of_issue_19_reproducible():
    old = get_preset("default_v2")
    assert (old.interval, old.scale_target, old.scale_blend, old.quantile_norm) == ("head", "range", 0.75, "plain")
    previous = old.replace(name="default", description="Ours: multi-horizon log-return LSTM on scale-free and range "
                           "features; its scale head learns the future Garman-Klass + gap range volatility and is "
                           "blended with the range EWMA (issue #19).")  # fmt: skip
    assert previous.fingerprint() == "4b8ca5dda8eb", "the fingerprint of `default` before the quantile head"


def test_default_is_the_quantile_head_selected_on_2021():
    new = get_preset("default")
    assert (new.interval, new.quantile_norm, new.scale_blend) == ("quantile", "range", 0.5)
    assert new.features == get_preset("default_v2").features
