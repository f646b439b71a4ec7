#!/usr/bin/env python3
"""Build python/mobilenet_fast/models/imagenet_1001_labels.txt: the class names of the TF-slim
ImageNet models (1001 classes: ``background``, then the 1000 ImageNet-1k classes).

Source: two data files of the ``timm`` wheel (Apache-2.0), read with :mod:`zipfile` (timm is
never imported, and needs not be installed):

* ``timm/data/_info/imagenet_synsets.txt`` -- the 1000 ImageNet-1k WordNet synset ids in the
  standard (sorted) order, which is the order of TF-slim's classes 1..1000;
* ``timm/data/_info/imagenet_synset_to_lemma.txt`` -- ``<synset>\\t<lemmas, comma separated>``.

Each class is named by its first lemma (the text before the first comma), e.g. ``tabby``,
``tiger cat``, ``Egyptian cat``, ``espresso``. Two first lemmas occur twice in ImageNet-1k; those
four classes get a qualifier in parentheses, from the table ``DISAMBIGUATION`` below (checked to
be exactly the colliding synsets, so a changed source fails loudly instead of silently producing
duplicates):

* n02012849 crane (the bird)            -> ``crane (bird)``
* n03126707 crane (the lifting machine) -> ``crane (machine)``
* n03710637 maillot (dancers' tights)   -> ``maillot (tights)``
* n03710721 maillot, tank suit          -> ``maillot (tank suit)``

Usage (the wheel can be fetched with ``pip download --no-deps timm==1.0.31``)::

    python scripts/make_imagenet_labels.py [path/to/timm-1.0.31-py3-none-any.whl]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import zipfile
from typing import Dict, List

DEFAULT_WHEEL = "/tmp/dl/timm-1.0.31-py3-none-any.whl"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(REPO, "python", "mobilenet_fast", "models", "imagenet_1001_labels.txt")
SYNSETS = "timm/data/_info/imagenet_synsets.txt"
LEMMAS = "timm/data/_info/imagenet_synset_to_lemma.txt"

#: Names for the synsets whose first lemma is shared with another ImageNet-1k class.
DISAMBIGUATION: Dict[str, str] = {
    "n02012849": "crane (bird)",
    "n03126707": "crane (machine)",
    "n03710637": "maillot (tights)",
    "n03710721": "maillot (tank suit)",
}


def build_labels(wheel: str) -> List[str]:
    with zipfile.ZipFile(wheel) as z:
        synsets = [s.strip() for s in z.read(SYNSETS).decode("utf-8").splitlines() if s.strip()]
        lemmas: Dict[str, str] = {}
        for line in z.read(LEMMAS).decode("utf-8").splitlines():
            if line.strip():
                key, _, value = line.partition("\t")
                lemmas[key.strip()] = value.strip()
    if len(synsets) != 1000 or len(set(synsets)) != 1000:
        raise SystemExit(f"{SYNSETS}: expected 1000 distinct synsets, found {len(synsets)}")
    if synsets != sorted(synsets):
        raise SystemExit(f"{SYNSETS}: synsets are not in the standard sorted order")
    missing = [s for s in synsets if not lemmas.get(s)]
    if missing:
        raise SystemExit(f"{LEMMAS}: no lemma for synset {missing[0]}")

    first = {s: lemmas[s].split(",")[0].strip() for s in synsets}
    counts = collections.Counter(first.values())
    colliding = {s for s in synsets if counts[first[s]] > 1}
    if colliding != set(DISAMBIGUATION):
        raise SystemExit(f"colliding first lemmas are for synsets {sorted(colliding)}, but DISAMBIGUATION "
                         f"covers {sorted(DISAMBIGUATION)}; update the table")
    names = ["background"] + [DISAMBIGUATION.get(s, first[s]) for s in synsets]
    if len(set(names)) != len(names):
        raise SystemExit("class names are not unique")
    for n in names:
        if not n or n != n.strip() or any(c in n for c in "\n\r\t"):
            raise SystemExit(f"bad class name {n!r}")
    return names


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", nargs="?", default=DEFAULT_WHEEL, help=f"timm wheel (default {DEFAULT_WHEEL})")
    ap.add_argument("-o", "--output", default=OUTPUT, help="output file (default: the packaged label file)")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.wheel):
        print(f"error: {args.wheel} not found; get it with: pip download --no-deps timm==1.0.31",
              file=sys.stderr)
        return 1
    names = build_labels(args.wheel)
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(names) + "\n")
    print(f"wrote {len(names)} labels to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
