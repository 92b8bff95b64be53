"""The study: the paper's experiments, with controls, on top of ``qsgd_optax``.

Not installed: run from the repository's root, e.g. ``python -m study.demo``.
Needs the ``examples`` extra (flax, matplotlib, tqdm, scipy, scikit-learn).
The tasks (:mod:`study.tasks`), the controls (:mod:`study.controls`), the
classifier (:mod:`study.models`) and its training harness
(:mod:`study.classification`), the mechanism study (:mod:`study.mechanism`),
the demo (:mod:`study.demo`) and the experiments that write ``study/results``.
Importing this package imports none of them.
"""
