"""trabecula — see and measure trabecular bone microstructure with CT.

Stages (one subpackage each, data flowing one way):
``io`` → ``phantom`` → ``scanner`` → ``enhance`` → ``morphometry`` / ``quality`` → ``stats`` →
``render`` / ``report``. The one type that passes between them is :class:`trabecula.Volume`.
"""

__version__ = "0.1.0"

from trabecula.errors import InputError, ParameterError, TrabeculaError  # noqa: E402
from trabecula.volume import UNITS, Provenance, Volume  # noqa: E402

__all__ = [
    "__version__",
    "Volume",
    "Provenance",
    "UNITS",
    "TrabeculaError",
    "InputError",
    "ParameterError",
]
