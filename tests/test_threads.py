"""Threads, batches and concurrent callers give the single-thread results, bit for bit; models
survive being dropped or re-threaded while other threads use them, and forked or spawned child
processes (multiprocessing) run them without deadlocking."""

from __future__ import annotations

import gc
import multiprocessing
import threading
import time
import weakref

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


# ------------------------------------------------------------------- concurrency and lifetime
def test_mixed_sizes_while_the_thread_count_changes(small_weights):
    """6 Python threads on one model with three input sizes while another thread keeps changing
    model.threads (each change drops every plan): every result equals the serial one."""
    model = mf.Model(small_weights, threads=2)
    serial = mf.Model(small_weights, threads=1)
    inputs = [random_input(1 + i % 3, *hw, seed=200 + i)
              for i, hw in enumerate([(160, 128), (96, 96), (64, 80), (128, 160), (96, 96), (160, 128)])]
    want = [serial.logits(x) for x in inputs]
    errors = []
    done = threading.Event()

    def caller(i):
        try:
            for k in range(8):
                x = inputs[(i + k) % len(inputs)]
                if not np.array_equal(model.logits(x), want[(i + k) % len(inputs)]):
                    errors.append(f"thread {i} call {k}: result differs")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(f"thread {i}: {e!r}")

    def changer():
        k = 0
        while not done.is_set():
            model.threads = (1, 3, 2)[k % 3]
            k += 1
            time.sleep(0.002)

    callers = [threading.Thread(target=caller, args=(i,)) for i in range(6)]
    change = threading.Thread(target=changer)
    change.start()
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    done.set()
    change.join()
    assert not errors, errors[:3]


def _long_batch():
    return random_input(40, 160, 128, seed=31)  # ~0.1 s on 2 threads


def _drop_during_call(weights, what, x):
    """One attempt: returns (result, collected_while_running, weakref to the object)."""
    model = mf.Model(weights, threads=2)
    target = model if what == "model" else model.plan(160, 128)
    box, result, started, finished = [target], [], threading.Event(), threading.Event()

    def run():
        obj = box.pop()
        started.set()
        result.append(obj.logits(x) if what == "model" else obj.run(x))
        finished.set()

    ref = weakref.ref(target)
    del target
    t = threading.Thread(target=run)
    t.start()
    started.wait()
    time.sleep(0.005)
    model.threads = 3  # drops the model's plans (for "plan": the plan's last other reference)
    del model
    during = not finished.is_set()  # our last reference went while the call was running
    gc.collect()
    t.join(60)
    assert not t.is_alive()
    return result[0], during, ref


@pytest.mark.parametrize("what", ["model", "plan"])
def test_dropping_the_last_reference_during_a_call(small_weights, what):
    """The only reference left is the one the running call holds (the object was popped from a
    list); the main thread drops everything it has and collects garbage while C++ runs with the
    GIL released. The call must finish with the right answer, and the object be freed after."""
    x = _long_batch()
    want = mf.Model(small_weights, threads=1).logits(x)
    during_any = False
    for _ in range(3):  # until the collection really happened while the call was running
        got, during, ref = _drop_during_call(small_weights, what, x)
        np.testing.assert_array_equal(got, want)
        gc.collect()
        assert ref() is None, f"the {what} must be freed once the call is over"
        during_any |= during
        if during_any:
            break
    assert during_any, "the machine was too slow to drop the references during the call"


def test_threads_setter_while_a_call_runs_on_the_old_plan(small_weights):
    x = _long_batch()
    model = mf.Model(small_weights, threads=2)
    want = model.logits(x[:2])
    old_plan = model.plan(160, 128)
    out = []
    t = threading.Thread(target=lambda: out.append(model.logits(x)))
    t.start()
    time.sleep(0.01)
    model.threads = 3
    assert model.plan(160, 128) is not old_plan and model.plan(160, 128).threads == 3
    np.testing.assert_array_equal(model.logits(x[:2]), want)  # on the new plan, concurrently
    del old_plan
    gc.collect()
    t.join(60)
    np.testing.assert_array_equal(out[0][:2], want)


# --------------------------------------------------------------------------------- processes
CHILD_TIMEOUT = 120


def _child_logits(model, inputs, conn):
    """In a child process: logits of each input (an existing plan, then new sizes), and how many
    forks away from the test process the child is (as the C++ pools see it)."""
    try:
        conn.send([model.logits(x) for x in inputs] + [mf._core.fork_generation()])
    except BaseException as e:  # pragma: no cover - sent to the parent, which fails the test
        conn.send(f"{type(e).__name__}: {e}")
    finally:
        conn.close()


def _child_from_weights(weights, threads, inputs, conn):
    """In a spawned child: build the model from pickled weights, then as _child_logits."""
    _child_logits(mf.Model(weights, threads=threads), inputs, conn)


def _run_child(ctx, target, args):
    recv, send = ctx.Pipe(duplex=False)
    p = ctx.Process(target=target, args=args + (send,))
    p.start()
    send.close()
    try:
        if not recv.poll(CHILD_TIMEOUT):
            pytest.fail(f"the child process gave no answer in {CHILD_TIMEOUT} s (deadlock?)")
        got = recv.recv()
    finally:
        p.join(CHILD_TIMEOUT)
        if p.is_alive():
            p.kill()
            p.join()
            pytest.fail("the child process did not exit (deadlock?)")
        recv.close()
    assert p.exitcode == 0, p.exitcode
    assert not isinstance(got, str), got
    return got


def _fork_context():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork start method on this platform")
    return multiprocessing.get_context("fork")


@pytest.mark.parametrize("threads", [1, 3])
def test_fork_after_multi_threaded_use(small_weights, threads):
    """The child inherits the model and its plans but not the pools' worker threads: it must
    start new ones (or the first call would wait forever for workers that do not exist)."""
    model = mf.Model(small_weights, threads=threads)
    inputs = [random_input(4, 160, 128, seed=41), random_input(1, 160, 128, seed=42), random_input(3, 96, 64, seed=43)]
    want = [model.logits(x) for x in inputs[:2]]  # the parent used the 160x128 plan (and its pool)
    want.append(mf.Model(small_weights, threads=1).logits(inputs[2]))  # a size planned in the child
    generation = mf._core.fork_generation()
    got = _run_child(_fork_context(), _child_logits, (model, inputs))
    assert got.pop() == generation + 1
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(model.logits(inputs[0]), want[0])  # the parent's pool still works


def test_fork_while_other_threads_use_the_model(small_weights):
    """Forks while other threads are inside calls (the fork waits for C++ runs in progress) and
    while a thread holds the model's lock (the child gets a fresh one)."""
    model = mf.Model(small_weights, threads=2)
    x = random_input(2, 160, 128, seed=51)
    small = random_input(1, 64, 96, seed=52)
    want = [model.logits(x), mf.Model(small_weights, threads=1).logits(small)]
    stop = threading.Event()
    errors = []

    def hammer():
        try:
            while not stop.is_set():
                if not np.array_equal(model.logits(x), want[0]):
                    errors.append("parent thread: result differs")
        except Exception as e:  # pragma: no cover
            errors.append(repr(e))

    holding, release = threading.Event(), threading.Event()
    other = np.ascontiguousarray(small[:, :, :64])  # a size the parent never planned

    def hold_lock():
        with model._lock:  # as a thread building a plan would
            holding.set()
            release.wait(CHILD_TIMEOUT)

    ctx = _fork_context()
    workers = [threading.Thread(target=hammer) for _ in range(2)]
    for t in workers:
        t.start()
    try:
        for _ in range(3):
            got = _run_child(ctx, _child_logits, (model, [x, small]))
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
        locker = threading.Thread(target=hold_lock)
        locker.start()
        holding.wait()
        try:
            got = _run_child(ctx, _child_logits, (model, [other]))  # planning it needs the lock
        finally:
            release.set()
            locker.join()
        np.testing.assert_array_equal(got[0], mf.Model(small_weights, threads=1).logits(other))
    finally:
        stop.set()
        for t in workers:
            t.join()
    assert not errors, errors[:3]


def test_spawned_children_compute_the_same_logits(small_weights):
    x = random_input(3, 160, 128, seed=61)
    want = mf.Model(small_weights, threads=1).logits(x)
    got = _run_child(multiprocessing.get_context("spawn"), _child_from_weights, (small_weights, 2, [x]))
    assert got.pop() == 0  # a fresh process, not a fork
    np.testing.assert_array_equal(got[0], want)
