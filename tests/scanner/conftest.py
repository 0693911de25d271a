"""Small label phantoms for the scanner tests: a water cylinder in air, optionally with a bone rod
(:func:`trabecula.phantom.objects.cylinder_labels`, sampled at voxel centres so these tests isolate the
scanner from the phantom stage's rasterisation)."""

from __future__ import annotations

from trabecula.phantom.objects import cylinder_labels as cylinder_phantom

__all__ = ["cylinder_phantom"]
