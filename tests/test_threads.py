"""Threads, batches and concurrent callers give the single-thread results, bit for bit."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import random_input, random_weights
from isa import isas_to_test

import mobilenet_fast as mf
from mobilenet_fast import InputError

ISAS = isas_to_test()


@pytest.fixture(scope="module")
def small_weights():
    # 0.5 at 160x128 has fused (band) layers and small late layers split by weight panels
    return random_weights(0.5, 37, "tf_same", (160, 128), seed=21, gamma_scale=1.5)


@pytest.mark.parametrize("isa", ISAS)
def test_threads_and_batches_match_single_thread(isa, small_weights):
    x = random_input(17, 160, 128, seed=3)
    want = mf.Model(small_weights, isa=isa, threads=1).logits(x)
    for threads in (1, 2, 3):
        model = mf.Model(small_weights, isa=isa, threads=threads)
        assert model.threads == threads
        for batch in (1, 2, 8, 17):
            got = model.logits(x[:batch])
            np.testing.assert_array_equal(got, want[:batch], err_msg=f"threads={threads} batch={batch}")
        np.testing.assert_array_equal(model.features(x[:3]),
                                      mf.Model(small_weights, isa=isa, threads=1).features(x[:3]))


def test_default_model_two_threads_matches_one():
    x = random_input(2, 224, 224, seed=9)
    one = mf.load(threads=1).logits(x)
    two = mf.load(threads=2).logits(x)
    np.testing.assert_array_equal(one, two)


def test_threads_setter_rebuilds_plans(small_weights):
    model = mf.Model(small_weights, threads=1)
    x = random_input(2, 160, 128, seed=4)
    want = model.logits(x)
    assert model.plan(160, 128).threads == 1
    model.threads = 3
    assert model.threads == 3 and model.plan(160, 128).threads == 3
    assert "threads=3" in repr(model) and "threads=3" in repr(model.plan(160, 128))
    np.testing.assert_array_equal(model.logits(x), want)


@pytest.mark.parametrize("bad", [0, -1, 257, 1.5, "2", True])
def test_bad_thread_counts_are_refused(small_weights, bad):
    with pytest.raises(InputError, match="threads"):
        mf.Model(small_weights, threads=bad)
    model = mf.Model(small_weights, threads=1)
    with pytest.raises(InputError, match="threads"):
        model.threads = bad
    assert model.threads == 1


def test_default_threads_follows_the_affinity_mask(monkeypatch):
    import os

    n = mf.default_threads()
    assert 1 <= n <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
        assert mf.default_threads() == 1
        assert mf.Model(random_weights(0.25, 3, "tf_same", (64, 64)), threads=None).threads == 1


@pytest.mark.parametrize("threads", [1, 2])
def test_many_python_threads_share_one_model(threads, small_weights):
    """8 Python threads x many calls on one model: every result equals the serial one."""
    model = mf.Model(small_weights, threads=threads)
    inputs = [random_input(1 + i % 3, 160, 128, seed=100 + i) for i in range(8)]
    want = [model.logits(x) for x in inputs]
    errors = []

    def worker(i):
        try:
            for _ in range(12):
                got = model.logits(inputs[i])
                if not np.array_equal(got, want[i]):
                    errors.append(f"thread {i}: result differs")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(f"thread {i}: {e!r}")

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors[:3]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_nan_or_inf_anywhere_is_refused(threads, small_weights):
    """The finite check runs inside the stem's row tasks: every row of every image is covered."""
    model = mf.Model(small_weights, threads=threads)
    for batch in (1, 2, 5):
        for image, row, col, value in [(0, 0, 0, np.nan), (batch - 1, 159, 127, np.inf), (batch - 1, 80, 3, -np.inf),
                                       (0, 1, 64, np.nan), (batch // 2, 158, 0, np.nan)]:
            x = random_input(batch, 160, 128, seed=1)
            x[image, row, col, col % 3] = value
            with pytest.raises(InputError, match="NaN or Inf"):
                model.logits(x)
            with pytest.raises(InputError, match="NaN or Inf"):
                model.features(x)
    # the model still works afterwards
    x = random_input(2, 160, 128, seed=1)
    np.testing.assert_array_equal(model.logits(x), mf.Model(small_weights, threads=1).logits(x))
