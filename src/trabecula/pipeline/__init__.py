"""Pipelines that compose the stages: the demo and studies."""
