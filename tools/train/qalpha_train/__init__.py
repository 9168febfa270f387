"""Quantum Alpha research pipeline (tools/train).

- :mod:`qalpha_train.ta_reference`: the TA-Lib reference the Rust feature library is tested against;
- :mod:`qalpha_train.make_test_models`, :mod:`qalpha_train.ref_sma_cross`: test fixtures for the
  Rust side;
- the model training pipeline (``qalpha-train`` / ``python -m qalpha_train``, :mod:`qalpha_train.cli`):
  :mod:`~qalpha_train.data` reads a ``qalpha dataset`` directory (docs/DATASET.md),
  :mod:`~qalpha_train.guardian`, :mod:`~qalpha_train.oracle` and :mod:`~qalpha_train.strategist`
  are the three models, :mod:`~qalpha_train.export` writes ONNX + the engine's metadata JSON.
"""

__version__ = "0.2.0"
