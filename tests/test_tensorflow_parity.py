"""Our engine on the shipped weights against TensorFlow's own numbers.

tests/data/tf_reference.npz holds the example photos' preprocessed pixels and the logits that
TensorFlow computed for them from the original TF-slim frozen graph
(scripts/tf_reference_logits.py; TensorFlow itself is not needed to run this test).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from isa import isas_to_test

import mobilenet_fast as mf

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tf_reference.npz")


@pytest.fixture(scope="module")
def tf_reference():
    with np.load(DATA) as z:
        return z["pixels"], z["logits"]


@pytest.mark.parametrize("isa", isas_to_test())
def test_logits_match_tensorflow(isa, tf_reference):
    pixels, tf_logits = tf_reference
    x = ((pixels.astype(np.float32) - 127.5) / 127.5).astype(np.float32)
    ours = mf.load(isa=isa).logits(x)
    assert ours.shape == tf_logits.shape == (2, 1001)
    err = np.abs(ours - tf_logits).max()
    assert err < 1e-3, f"max |ours - TensorFlow| = {err:.3g}"
    assert (ours.argmax(1) == tf_logits.argmax(1)).all()
    assert list(tf_logits.argmax(1)) == [282, 968]  # tabby, espresso


def test_preprocess_reproduces_the_recorded_pixels(tf_reference):
    pixels, _ = tf_reference
    here = os.path.join(os.path.dirname(DATA), os.pardir, os.pardir, "examples")
    for i, name in enumerate(("chelsea.png", "coffee.png")):
        x = mf.preprocess(os.path.join(here, name), 224, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))[0]
        # Pillow's resampling may differ by a level between versions; allow that, no more.
        assert np.abs(x - pixels[i]).max() <= 1.0
