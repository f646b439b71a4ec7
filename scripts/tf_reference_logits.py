"""Record TensorFlow's own logits for the example photos, for tests/test_tensorflow_parity.py.

Runs the original TF-slim frozen graph with TensorFlow itself (not needed by the package or its
tests; install it in a separate environment, e.g. ``python -m venv /tmp/tfenv &&
/tmp/tfenv/bin/pip install tensorflow-cpu pillow numpy``) and writes ``tests/data/tf_reference.npz``
holding the preprocessed uint8 pixels (centre crops of examples/*.png), the logits TensorFlow
computes from ``(pixels - 127.5) / 127.5`` and TensorFlow's version.

    /tmp/tfenv/bin/python scripts/tf_reference_logits.py PATH/TO/retrained_graph.pb

The pixels come from mobilenet_fast.preprocess, which this script imports from ``python/`` so
it runs without the C++ extension.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def crops() -> np.ndarray:
    import types

    # The preprocess module alone: an empty package shell, so neither __init__ nor _core loads.
    pkg = types.ModuleType("mobilenet_fast")
    pkg.__path__ = [os.path.join(ROOT, "python", "mobilenet_fast")]
    sys.modules["mobilenet_fast"] = pkg
    from mobilenet_fast import preprocess as pp

    out = []
    for name in ("chelsea.png", "coffee.png"):
        x = pp.preprocess(os.path.join(ROOT, "examples", name), 224, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
        assert np.array_equal(x, np.round(x)), "crops are whole pixel values"
        out.append(x[0].astype(np.uint8))
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pb", help="the TF-slim frozen graph (nudity/files/retrained_graph.pb)")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "tf_reference.npz"))
    args = ap.parse_args()
    import tensorflow as tf

    pixels = crops()
    x = ((pixels.astype(np.float32) - 127.5) / 127.5).astype(np.float32)
    gd = tf.compat.v1.GraphDef()
    with open(args.pb, "rb") as f:
        gd.ParseFromString(f.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(gd, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        logits = np.concatenate([sess.run("MobilenetV1/Predictions/Reshape:0", {"input:0": x[i:i + 1]})
                                 for i in range(len(x))])
    np.savez_compressed(args.out, pixels=pixels, logits=logits.astype(np.float32),
                        tensorflow_version=np.array(tf.__version__))
    print(f"wrote {args.out}: logits {logits.shape}, top-1 {logits.argmax(1).tolist()}, TF {tf.__version__}")


if __name__ == "__main__":
    main()
