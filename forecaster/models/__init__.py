"""The models: the Forecaster interface, the LSTM and its parts (features, presets, networks, training, conformal
intervals), baselines.
"""
