"""Reading traced programs: the ``dot_general`` equations of a jaxpr.

Shared by the precision tests (``test_precision.py``, ``test_attention.py``):
on NVIDIA GPUs a float32 contraction at default precision runs in TF32, which
no CPU value test can see, so those tests read the program instead.
"""

import jax
import jax.numpy as jnp

HIGHEST = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)


def dot_generals(jaxpr):
  """Every ``dot_general`` equation of a (closed) jaxpr, sub-jaxprs included
  (jit, custom_jvp/custom_vjp, scan, map, cond and while bodies)."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)  # ClosedJaxpr -> Jaxpr.
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      yield eqn
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else (param,):
        if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
          yield from dot_generals(sub)


def inexact_dots(jaxpr):
  """The ``dot_general`` equations with a float or complex operand."""
  return [
    eqn
    for eqn in dot_generals(jaxpr)
    if any(jnp.issubdtype(v.aval.dtype, jnp.inexact) for v in eqn.invars)
  ]


def low_precision_dots(jaxpr):
  """The inexact ``dot_general`` equations that do not ask for ``HIGHEST``."""
  return [eqn for eqn in inexact_dots(jaxpr) if eqn.params.get("precision") != HIGHEST]


def primitives(jaxpr):
  """The names of every equation's primitive, sub-jaxprs included."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  for eqn in jaxpr.eqns:
    yield eqn.primitive.name, eqn
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else (param,):
        if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
          yield from primitives(sub)
