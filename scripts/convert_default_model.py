#!/usr/bin/env python3
"""Build the packaged default model, python/mobilenet_fast/models/mobilenet_v1_1.0_224.safetensors.

The weights are Google's TF-slim MobileNetV1 1.0/224 ImageNet checkpoint (Apache-2.0,
tensorflow/models research/slim), taken from the frozen graph embedded in the PyPI source archive
of ``nudity`` 0.2.3 (file ``nudity/files/retrained_graph.pb``). Only its ``MobilenetV1/*`` nodes
are used; the retrained ``final_training_ops`` layer on top is ignored. See models/NOTICE.

One command, run from anywhere::

    pip download --no-deps nudity==0.2.3 -d /tmp/dl && tar -xzf /tmp/dl/nudity-0.2.3.tar.gz -C /tmp/dl
    PYTHONPATH=python python scripts/convert_default_model.py [/tmp/dl/nudity-0.2.3/nudity/files/retrained_graph.pb]

It checks the .pb's sha256, imports it with :func:`mobilenet_fast.importers.import_tf_graphdef`,
attaches the 1001 ImageNet labels (models/imagenet_1001_labels.txt, made by
scripts/make_imagenet_labels.py), writes the .safetensors file and records its sha256 in
models/SHA256SUMS. The output is deterministic: the same input gives the same bytes.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))

from mobilenet_fast.importers import import_tf_graphdef  # noqa: E402
from mobilenet_fast.weights import file_sha256, load_weights, save_weights  # noqa: E402

DEFAULT_PB = "/tmp/dl/nudity-0.2.3/nudity/files/retrained_graph.pb"
PB_SHA256 = "3b90af536f810f5f75e9f6d431bc2e8a3c4fc2ff4f693aa0dd4ae429816f8735"
MODELS = os.path.join(REPO, "python", "mobilenet_fast", "models")
OUTPUT_NAME = "mobilenet_v1_1.0_224.safetensors"
LABELS = os.path.join(MODELS, "imagenet_1001_labels.txt")
SUMS = os.path.join(MODELS, "SHA256SUMS")
SOURCE = (
    "TF-slim MobileNetV1 1.0/224 ImageNet checkpoint by Google (Apache-2.0, tensorflow/models "
    "research/slim), read from the frozen graph nudity/files/retrained_graph.pb of the PyPI package "
    f"nudity 0.2.3 (sha256 {PB_SHA256}), MobilenetV1/* nodes only; converted by "
    "scripts/convert_default_model.py. Labels: background + ImageNet-1k first WordNet lemmas "
    "(timm 1.0.31 data files, Apache-2.0). See mobilenet_fast/models/NOTICE."
)


def update_sums(name: str, digest: str) -> None:
    lines = []
    if os.path.exists(SUMS):
        with open(SUMS, encoding="utf-8") as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip() and not ln.endswith("  " + name)]
    lines.append(f"{digest}  {name}")
    with open(SUMS, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(sorted(lines, key=lambda ln: ln.split("  ", 1)[-1])) + "\n")


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description="Convert the TF-slim MobileNetV1 frozen graph into the packaged "
                                             "default model.")
    ap.add_argument("pb", nargs="?", default=DEFAULT_PB, help=f"retrained_graph.pb (default {DEFAULT_PB})")
    ap.add_argument("-o", "--output", default=os.path.join(MODELS, OUTPUT_NAME),
                    help="output .safetensors (default: the packaged model; SHA256SUMS is only updated "
                         "for that one)")
    args = ap.parse_args(argv)

    if not os.path.isfile(args.pb):
        print(f"error: {args.pb} not found. Get it with:\n  pip download --no-deps nudity==0.2.3 -d /tmp/dl && "
              "tar -xzf /tmp/dl/nudity-0.2.3.tar.gz -C /tmp/dl", file=sys.stderr)
        return 1
    digest = file_sha256(args.pb)
    if digest != PB_SHA256:
        print(f"error: {args.pb} has sha256 {digest}, expected {PB_SHA256}", file=sys.stderr)
        return 1

    with open(LABELS, encoding="utf-8") as f:
        labels = f.read().splitlines()
    weights = import_tf_graphdef(args.pb, labels=labels, source=SOURCE)
    tmp = args.output + ".tmp"
    save_weights(tmp, weights)
    load_weights(tmp)  # validates what was written
    os.replace(tmp, args.output)

    out_digest = file_sha256(args.output)
    if os.path.abspath(args.output) == os.path.join(MODELS, OUTPUT_NAME):
        update_sums(OUTPUT_NAME, out_digest)
    print(f"{weights}\nwrote {args.output} ({os.path.getsize(args.output):,} bytes)\nsha256 {out_digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
