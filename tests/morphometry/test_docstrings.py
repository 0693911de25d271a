"""The examples in the morphometry docstrings run and print what they say."""

from __future__ import annotations

import doctest

import trabecula.morphometry.thickness as thickness


def test_local_thickness_docstring_examples():
    result = doctest.testmod(thickness, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0
