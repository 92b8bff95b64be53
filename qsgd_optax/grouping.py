"""How a leaf is split into circuits: the formulations each platform compiles.

Every formulation gives the same values; they differ in the program XLA
builds. :data:`PLATFORM_GROUPING` says which one each platform takes, and
:func:`forced` makes every platform take one, to compare them in tests and
benchmarks (the derivations: ``qsgd_optax._src.grouping``).
"""

from qsgd_optax._src.grouping import GROUPINGS, PLATFORM_GROUPING, forced

__all__ = ["GROUPINGS", "PLATFORM_GROUPING", "forced"]
