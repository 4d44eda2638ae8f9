"""The compiled-epoch training path: the same steps, weights and early stopping as ``model.fit``, reproducibly."""

import keras
import numpy as np
import pytest

from forecaster.models import networks, training


@pytest.fixture
def tiny_preset(tiny_preset):
    """A point-only network (no scale head, so ``Dense(H)``): these tests train it on ``y`` directly."""
    return tiny_preset.replace(interval="ewma")


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 10, 5)).astype("float32")
    y = (x[:, -3:, :2].mean(axis=1) + 0.1 * rng.normal(size=(150, 2))).astype("float32")
    return x[:110], y[:110], (x[110:], y[110:])


def _weights(model) -> list[np.ndarray]:
    return [w.copy() for w in model.get_weights()]


def test_unshuffled_fit_matches_keras_fit_bit_for_bit(tiny_preset, arrays):
    """Same batches in the same order: identical weights and history, early stopping included."""
    x, y, (x_val, y_val) = arrays
    val = (x_val, -y_val)  # the opposite relation: validation loss rises as the model learns, so training stops
    preset = tiny_preset.replace(learning_rate=0.01)
    ours, plain = networks.build_model(preset, 5, 2), networks.build_model(preset, 5, 2)
    history = training.fit(ours, x, y, val, epochs=12, batch_size=32, patience=2, shuffle=False)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    keras_history = plain.fit(x, y, validation_data=val, epochs=12, batch_size=32, shuffle=False, verbose=0,
                              callbacks=[stop]).history  # fmt: skip
    assert len(history["loss"]) < 12, "the set-up should make early stopping trigger"
    assert history.keys() == keras_history.keys()
    assert history["loss"] == keras_history["loss"] and history["mae"] == keras_history["mae"]
    # Keras validates in batches of 32 and averages them; we validate the slice in one batch: rounding differs.
    np.testing.assert_allclose(history["val_loss"], keras_history["val_loss"], rtol=1e-6)
    for a, b in zip(_weights(ours), _weights(plain), strict=True):
        np.testing.assert_array_equal(a, b)


def test_every_epoch_runs_one_step_per_batch_including_the_partial_one(tiny_preset, arrays):
    x, y, _ = arrays
    model = networks.build_model(tiny_preset, 5, 2)
    training.fit(model, x, y, None, epochs=3, batch_size=32, patience=3)
    assert int(model.optimizer.iterations.numpy()) == 3 * 4 == 3 * training.steps_per_epoch(110, 32)


def test_same_seed_gives_the_same_weights_and_another_seed_other_weights(tiny_preset, arrays):
    x, y, val = arrays
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        model = networks.build_model(tiny_preset, 5, 2)
        training.fit(model, x, y, val, epochs=2, batch_size=16, patience=5, seed=seed)
        runs[name] = _weights(model)
    for a, b in zip(runs["a"], runs["b"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, c) for a, c in zip(runs["a"], runs["c"], strict=True))


def test_predict_function_gives_model_predict_numbers_for_any_batch(tiny_preset, arrays):
    x, y, _ = arrays
    model = networks.build_model(tiny_preset, 5, 2)
    predict = training.predict_function(model)
    for rows in (x[:1], x[:7], x):
        np.testing.assert_allclose(predict(rows), model.predict(rows, verbose=0), rtol=1e-6, atol=1e-7)


def _tracings() -> int:
    """How often all engines of this process have traced any of their functions."""
    with training._ENGINES_LOCK:
        engines = [engine for free in training._ENGINES.values() for engine in free]
    functions = [f for e in engines for f in (e.evaluate, e.infer, *e._epochs.values())]
    return sum(f.experimental_get_tracing_count() for f in functions)


def test_a_new_model_of_a_known_architecture_traces_nothing(tiny_preset, arrays):
    """Fitting, fine-tuning and forecasting with a new model reuses the functions its architecture compiled once,
    although every build names its layers anew."""
    x, y, val = arrays
    first = networks.build_model(tiny_preset, 5, 2)
    training.fit(first, x, y, val, epochs=1, batch_size=32, patience=1)
    training.fit(first, x[:64], y[:64], None, epochs=1, batch_size=32, patience=1)
    training.predict_function(first)(x[:3])
    traced = _tracings()
    second = networks.build_model(tiny_preset, 5, 2)
    assert second.layers[0].name != first.layers[0].name
    training.fit(second, x, y, val, epochs=2, batch_size=32, patience=2)
    training.fit(second, x[:50], y[:50], None, epochs=1, batch_size=32, patience=1)
    training.predict_function(second)(x[:5])
    assert _tracings() <= traced + 1, "at most one retrace, for a new sample count"
    assert training.architecture_key(second) == training.architecture_key(first)
    other = networks.build_model(tiny_preset.replace(lstm_units=(4,)), 5, 2)
    assert training.architecture_key(other) != training.architecture_key(first)


def test_a_new_architectures_first_fit_traces_its_epoch_and_validation_once(tiny_preset, arrays):
    """The compiled loss and metrics are built before the first epoch is traced, as ``keras.Model.fit`` does:
    made inside the traced epoch, their new variables make TensorFlow trace it a second time."""
    x, y, val = arrays
    model = networks.build_model(tiny_preset.replace(lstm_units=(7,)), 5, 2)  # an architecture no other test uses
    training.fit(model, x, y, val, epochs=2, batch_size=32, patience=2)
    key = training.architecture_key(model)
    with training._ENGINES_LOCK:
        [engine] = training._ENGINES[key]
    assert engine._epochs[32].experimental_get_tracing_count() == 1
    assert engine.evaluate.experimental_get_tracing_count() == 1


def test_models_that_compute_differently_never_share_an_engine():
    """Names are left out of the key, but not a dtype policy's name, a loss, or an optimizer setting."""

    def net(dtype: str = "float32", loss: str = "mse", beta_1: float = 0.9):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, dtype=dtype)])
        model.compile(optimizer=keras.optimizers.Adam(0.01, beta_1=beta_1), loss=loss)
        return model

    decay = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=10, decay_rate=0.9)
    scheduled = net()
    scheduled.compile(optimizer=keras.optimizers.Adam(decay), loss="mse")
    models = (net(), net("float64"), net(loss="mae"), net(beta_1=0.5), scheduled)
    keys = [training.architecture_key(m) for m in models]
    assert len(set(keys)) == 5
    assert training.architecture_key(net()) == keys[0], "a new build of the same network shares the key"
    recompiled = models[0]
    recompiled.compile(optimizer=keras.optimizers.Adam(0.01), loss="mae")
    assert training.architecture_key(recompiled) == keys[2], "compiling again gives the key of the new settings"


@pytest.mark.parametrize("layers", ["plain", "dropout+batch_norm"])
def test_models_sharing_an_engine_keep_their_own_weights_and_optimizer_state(tiny_preset, arrays, layers):
    """Interleaved fits of two models of one architecture give each exactly what it gets alone (with dropout, whose
    seed state moves, and batch normalisation, whose statistics do), and a forecast of one is never made with the
    other's weights."""
    if layers != "plain":
        tiny_preset = tiny_preset.replace(dropout=0.2, batch_norm=True)
    x, y, val = arrays
    alone = networks.build_model(tiny_preset, 5, 2)
    training.fit(alone, x, y, val, epochs=2, batch_size=32, patience=2, seed=3)
    training.fit(alone, x[:64], y[:64], None, epochs=1, batch_size=32, patience=1, seed=3)
    a, b = networks.build_model(tiny_preset, 5, 2), networks.build_model(tiny_preset.replace(seed=1), 5, 2)
    training.fit(a, x, y, val, epochs=2, batch_size=32, patience=2, seed=3)
    training.fit(b, x, -y, val, epochs=3, batch_size=16, patience=3, seed=4)
    from_b = training.predict_function(b)(x[:4])
    training.fit(a, x[:64], y[:64], None, epochs=1, batch_size=32, patience=1, seed=3)
    for got, want in zip(_weights(a), _weights(alone), strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(a.optimizer.variables, alone.optimizer.variables, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(training.predict_function(a)(x[:4]), training.predict_function(alone)(x[:4]))
    np.testing.assert_allclose(from_b, b.predict(x[:4], verbose=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(training.predict_function(b)(x[:4]), from_b)
    for got, want in zip(a.non_trainable_variables, alone.non_trainable_variables, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_threads_never_share_an_engine(tiny_preset):
    model = networks.build_model(tiny_preset, 5, 2)
    with training._engine(model) as free:
        pass
    with training._engine(model) as first, training._engine(model) as second:
        assert first is not second
        assert free in (first, second), "a returned engine is reused"


def test_extra_callbacks_see_every_epoch(tiny_preset, arrays):
    x, y, _ = arrays
    seen = []
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, sorted(logs))))
    training.fit(networks.build_model(tiny_preset, 5, 2), x, y, None, epochs=2, batch_size=64, patience=2,
                 callbacks=[callback])  # fmt: skip
    assert seen == [(0, ["loss", "mae"]), (1, ["loss", "mae"])]
