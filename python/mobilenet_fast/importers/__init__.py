"""Importers: map foreign MobileNetV1 files onto our canonical tensors.

One module per source format. Each returns a :class:`mobilenet_fast.weights.WeightSet` and raises
:class:`mobilenet_fast.errors.ImportFormatError` when the file is not a MobileNetV1 it can map.
The heavy libraries a format needs are imported lazily, inside the import function, so importing
this package costs nothing.

* :func:`import_tf_graphdef` -- TensorFlow frozen GraphDef ``.pb`` of the TF-slim release
  (needs the ``tf`` extra: ``pip install "mobilenet-fast[tf]"``).
"""

from __future__ import annotations

from .tf_graphdef import import_tf_graphdef

__all__ = ["import_tf_graphdef"]
