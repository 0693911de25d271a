"""Phantoms: synthetic trabecular bone, anatomy and test objects, on a fine grid (``trabecula phantom``)."""

from trabecula.phantom.simple import random_field_bone

__all__ = ["random_field_bone"]
