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
    assert training.predict_function(model) is predict, "one traced function per model"


def test_finetuning_reuses_the_compiled_epoch(tiny_preset, arrays):
    x, y, val = arrays
    model = networks.build_model(tiny_preset, 5, 2)
    training.fit(model, x, y, val, epochs=1, batch_size=32, patience=1)
    run = training.epoch_function(model, 32)
    traced = run.experimental_get_tracing_count()
    training.fit(model, x[:64], y[:64], None, epochs=2, batch_size=32, patience=2)
    training.fit(model, x[:50], y[:50], None, epochs=2, batch_size=32, patience=2)
    assert training.epoch_function(model, 32) is run
    assert run.experimental_get_tracing_count() <= traced + 1, "at most one retrace, for a new sample count"


def test_extra_callbacks_see_every_epoch(tiny_preset, arrays):
    x, y, _ = arrays
    seen = []
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, sorted(logs))))
    training.fit(networks.build_model(tiny_preset, 5, 2), x, y, None, epochs=2, batch_size=64, patience=2,
                 callbacks=[callback])  # fmt: skip
    assert seen == [(0, ["loss", "mae"]), (1, ["loss", "mae"])]
