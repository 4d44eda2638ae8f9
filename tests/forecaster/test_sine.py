"""The seed002 sine experiment learns: validation loss after 20 epochs is below 1e-4."""

import pytest

from forecaster.models.sine import run_sine


@pytest.mark.slow
def test_sine_validation_loss_after_20_epochs_is_below_1e4():
    result = run_sine(epochs=20)
    assert len(result.val_loss) == 20
    assert result.val_loss[0] > 1e-2, "the first epoch should still be far from converged"
    assert result.val_loss[-1] < 1e-4
    assert result.test_rmse < 0.05
