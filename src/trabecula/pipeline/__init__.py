"""Studies and the demo: the stages composed (``trabecula demo``, ``twin-study``, ``evaluate``).

* :func:`run_demo` (:mod:`.demo`, one module ``demo_<stage>`` per stage): the main job on built-in defaults;
* :func:`run_study` (:mod:`.twin_study`): what each virtual scanner resolves, and its morphometry bias;
* :func:`run_evaluation` (:mod:`.vertebra_study`): the vertebra study's evaluation of enhancement models
  on held-out specimens (image quality, morphometry tables, statistics, hallucination check).
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "demo": ["run_demo"],
        "twin_study": ["run_study"],
        "vertebra_study": ["run_evaluation", "evaluate"],
    },
)
