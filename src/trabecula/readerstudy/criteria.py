"""The vertebra study's five criteria for the subjective assessment, with the wording of its Table 1.

Seed 002 §2.7: contrast was rated on a 3-point scale; noise, sharpness, overlapping shadows and texture on a
5-point scale. The text below is Table 1's, unchanged except for capitalisation.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Criterion:
    """One question: a short key (a database column), the question and the wording of each score 1..n."""

    key: str
    label: str
    question: str
    scores: tuple[str, ...]

    @property
    def points(self) -> int:
        return len(self.scores)


CRITERIA: tuple[Criterion, ...] = (
    Criterion("contrast", "Contrast", "Contrast between the trabecular bone and bone marrow",
              ("Too high or too low and unacceptable", "High or low but acceptable", "Optimal")),
    Criterion("noise", "Noise", "Existence of noise",
              ("Severe and unacceptable", "Marked but acceptable", "Moderate", "Mild", "None or minimal")),
    Criterion("sharpness", "Sharpness", "Sharpness of the trabecular bone",
              ("Severe blurring of the images and unacceptable", "Marked blurring of the images but acceptable",
               "Moderate blurring of the images", "Mild blurring of the images",
               "None or minimal blurring of the images")),
    Criterion("shadow", "Shadow", "Obvious overlapping shadows",
              ("Severe and unacceptable", "Marked but acceptable", "Moderate", "Mild", "None or minimal")),
    Criterion("texture", "Texture", "Natural shape of the trabecular bone texture",
              ("Poor and unacceptable", "Marked irregular and unnatural but acceptable",
               "Slightly irregular and unnatural", "Almost defined and natural", "Completely defined and natural")),
)

CRITERION_KEYS: tuple[str, ...] = tuple(c.key for c in CRITERIA)
BY_KEY: dict[str, Criterion] = {c.key: c for c in CRITERIA}
