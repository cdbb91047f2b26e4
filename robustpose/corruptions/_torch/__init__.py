"""The torch building blocks behind ``corrupt_batch`` (``robustpose.corruptions.batch``).

Private: ``ops`` (padding, filters, resizes, HSV, sampling), ``weather`` (snow, frost, fog,
mud spatter, elastic), ``spatter`` (water spatter's OpenCV steps). Importing this package
imports torch; ``robustpose.corruptions`` itself imports it lazily.
"""
