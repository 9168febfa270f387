"""Quantum Alpha research pipeline (tools/train).

For now only :mod:`qalpha_train.ta_reference`, the TA-Lib reference the Rust feature library is
tested against; the training code comes with issue 8.
"""
