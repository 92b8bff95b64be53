"""Analytic backend: the circuit's expectation values in closed form.

With one rotation layer the state before the CNOTs is a product state with
``<Z_j> = -sin(pi * t_j)``, and the CNOT network maps each measured ``Z_i`` to
a Z-string over a parity set ``S_i`` (see
:meth:`qsgd_optax.Gates.parity_sets`), so

    <Z_i> = prod_{j in S_i} (-sin(pi * t_j)).

Without CNOTs every qubit evolves alone for any number of layers: its Bloch
vector starts on +X (after H) and is turned by ``RY(phi)`` then ``RZ(phi)``
each layer, which is a handful of elementwise multiply-adds.

Angles arrive in *turns* ``t`` (``phi = pi * t``), reduced to ``[-1, 1]`` by
:func:`reduce_turns`, which is exact in floating point: ``sin(pi * x)`` is
evaluated without ever forming ``pi * x``, so ``|x| = 1e30`` gives 0, as the
exact value ``sin(pi * integer)`` is, rather than the rounding noise of
``sin(3.14e30)``.

References:
  Pamuk et al., `Superpositional Gradient Descent
  <https://arxiv.org/abs/2511.01918>`_, 2025.
"""

from collections.abc import Sequence
from typing import Optional

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from qsgd_optax._src.gates import Gates

# Odd minimax-style polynomial: sin(pi t) ~= t * P(t^2) on |t| <= 1/2, relative
# error 5.3e-9 in exact arithmetic, 1.9e-7 (1.6 ulp) evaluated in float32.
# Fitted once by iteratively reweighted least squares on Chebyshev nodes.
_SINPI_COEFFS = (
  3.1415926369756333,
  -5.167709688855712,
  2.5500697825670766,
  -0.5982424179992712,
  0.07756089429857976,
)
# Even companion: cos(pi t) ~= (1 - 2|t|) (1 + 2|t|) R(t^2) on |t| <= 1/2, relative
# error 1e-9 in exact arithmetic, exact zeros at t = +-1/2. Fitted the same way.
_COSPI_COEFFS = (
  0.9999999990184979,
  -0.9348020120020241,
  0.3194974426866184,
  -0.05718464575492489,
  0.006038547350599777,
)


def reduce_turns(x: jax.Array) -> jax.Array:
  """Reduces ``x`` to ``t`` in ``[-1, 1]`` with ``sin(pi t) == sin(pi x)``.

  Exact for every finite float (``x - 2 * round(x / 2)`` incurs no rounding),
  and maps NaN and infinities to 0, so a non-finite parameter contributes a
  zero modulation instead of spreading NaN to its circuit neighbours.

  Args:
    x: angles in turns, floating point, any shape.

  Returns:
    An array like ``x``: ``t`` in ``[-1, 1]``, and 0 where ``x`` is not finite.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.backends.analytic import reduce_turns
    >>> reduce_turns(jnp.array([2.5, -3.25, 1e30, jnp.nan]))
    Array([0.5 , 0.75, 0.  , 0.  ], dtype=float32)
  """
  t = x - 2 * jnp.round(x / 2)
  return jnp.where(jnp.isfinite(x), t, jnp.zeros_like(t))


def sinpi(t: jax.Array) -> jax.Array:
  """``sin(pi * t)`` for ``t`` in ``[-1, 1]`` (see :func:`reduce_turns`).

  float32 uses a degree-9 polynomial after folding ``t`` into ``[-1/2, 1/2]``
  (about 1.6 ulp; a vectorisable handful of multiply-adds, where XLA's CPU
  ``sin`` is a much slower generic routine); float64 uses ``jnp.sin``.

  Args:
    t: angles in turns, in ``[-1, 1]``.

  Returns:
    An array like ``t``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.backends.analytic import sinpi
    >>> sinpi(jnp.array([0.0, 0.5, -0.25, 1.0])).round(4)
    Array([ 0.    ,  1.    , -0.7071,  0.    ], dtype=float32)
  """
  if t.dtype == jnp.float64:
    return jnp.sin(jnp.pi * t)
  # sin(pi t) = sin(pi (sign(t) - t)) folds |t| > 1/2 into [-1/2, 1/2].
  t = jnp.where(jnp.abs(t) > 0.5, jnp.sign(t) - t, t)
  u = t * t
  p = jnp.asarray(_SINPI_COEFFS[-1], t.dtype)
  for c in _SINPI_COEFFS[-2::-1]:
    p = p * u + jnp.asarray(c, t.dtype)
  return t * p


def _horner(coeffs: Sequence[float], u: jax.Array, dtype: DTypeLike) -> jax.Array:
  p = jnp.asarray(coeffs[-1], dtype)
  for c in coeffs[-2::-1]:
    p = p * u + jnp.asarray(c, dtype)
  return p


def sincospi(t: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(sin(pi * t), cos(pi * t))`` for ``t`` in ``[-1, 1]``, sharing one fold.

  float32 folds ``|t| > 1/2`` to ``r = sign(t) - t`` (exact), where
  ``sin(pi t) = sin(pi r)`` and ``cos(pi t) = -cos(pi r)``, then evaluates
  :func:`sinpi`'s odd polynomial and an even one,
  ``cos(pi r) ~= (1 - 2|r|) (1 + 2|r|) R(r^2)`` (exact zeros at ``t = +-1/2``,
  about 2 ulp). float64 uses ``jnp.sin`` and ``jnp.cos``.

  Args:
    t: angles in turns, in ``[-1, 1]``.

  Returns:
    A pair of arrays like ``t``: ``sin(pi * t)`` and ``cos(pi * t)``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.backends.analytic import sincospi
    >>> s, c = sincospi(jnp.array([0.0, 0.5, -1.0, 0.25]))
    >>> s.round(6)
    Array([0.      , 1.      , 0.      , 0.707107], dtype=float32)
    >>> c.round(6)
    Array([ 1.      ,  0.      , -1.      ,  0.707107], dtype=float32)
  """
  if t.dtype == jnp.float64:
    return jnp.sin(jnp.pi * t), jnp.cos(jnp.pi * t)
  fold = jnp.abs(t) > 0.5
  r = jnp.where(fold, jnp.sign(t) - t, t)
  u = r * r
  a = jnp.abs(r)
  s = r * _horner(_SINPI_COEFFS, u, t.dtype)
  c = (1 - 2 * a) * (1 + 2 * a) * _horner(_COSPI_COEFFS, u, t.dtype)
  return s, jnp.where(fold, -c, c)


def cospi(t: jax.Array) -> jax.Array:
  """``cos(pi * t)`` for ``t`` in ``[-1, 1]`` (see :func:`sincospi`).

  Args:
    t: angles in turns, in ``[-1, 1]``.

  Returns:
    An array like ``t``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax.backends.analytic import cospi
    >>> cospi(jnp.array([0.0, 0.5, -0.25, 1.0])).round(4)
    Array([ 1.    ,  0.    ,  0.7071, -1.    ], dtype=float32)
  """
  return sincospi(t)[1]


def _product_expectations(circuit: Gates, t: jax.Array) -> jax.Array:
  """<Z> of a circuit without CNOTs, elementwise over any shape."""
  if circuit.layers == 1:
    return -sinpi(t)
  phi = jnp.pi * t
  s, c = jnp.sin(phi), jnp.cos(phi)
  x, y, z = jnp.ones_like(t), jnp.zeros_like(t), jnp.zeros_like(t)
  for _ in range(circuit.layers):
    x, z = x * c + z * s, z * c - x * s  # RY(phi) about the Y axis.
    x, y = x * c - y * s, x * s + y * c  # RZ(phi) about the Z axis.
  return z


def expectations(circuit: Gates, t: jax.Array) -> jax.Array:
  """``<Z_i>`` of ``circuit`` at angles ``pi * t``, in closed form.

  Args:
    circuit: a circuit with ``circuit.has_closed_form``.
    t: angles in turns, already reduced by :func:`reduce_turns`. For a circuit
      without CNOTs any shape (the map is elementwise); otherwise shape
      ``(..., n_qubits)``, one circuit per row.

  Returns:
    An array like ``t`` holding the expectation values.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends.analytic import expectations
    >>> expectations(Gates.build(2, "chain"),
    ...              jnp.array([0.5, 0.5]))
    Array([-1.,  1.], dtype=float32)
  """
  if not circuit.has_closed_form:
    raise ValueError(
      "The analytic backend has a closed form only for one rotation layer "
      "or no entanglement; "
      f"got layers={circuit.layers} with CNOTs {circuit.cnots}."
    )
  if circuit.is_product:
    return _product_expectations(circuit, t)
  columns = [t[..., j] for j in range(circuit.n_qubits)]
  return jnp.stack(expectation_columns(circuit, columns), axis=-1)


def expectation_columns(
  circuit: Gates, columns: Sequence[jax.Array], qubits: Optional[Sequence[int]] = None
) -> list[jax.Array]:
  """The one-layer entangled closed form on one array of angles per qubit.

  ``<Z_i>`` is the product of ``-sin(pi * t_j)`` over the parity set ``S_i``
  (:meth:`~qsgd_optax.Gates.parity_sets`).

  Args:
    circuit: the circuit, with one rotation layer.
    columns: one array of angles per qubit, all of one shape, in turns,
      reduced by :func:`reduce_turns`.
    qubits: the qubits ``i`` to return, ``None`` for all. Only the columns
      their parity sets read are evaluated.

  Returns:
    ``<Z_i>`` as one array per qubit asked for, of the columns' shape.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends.analytic import expectation_columns
    >>> c = Gates.build(2, "chain")
    >>> expectation_columns(c, [jnp.array([0.5, 0.5]), jnp.array([0.5, 0.0])])
    [Array([-1., -1.], dtype=float32), Array([1., 0.], dtype=float32)]
  """
  parity_sets = circuit.parity_sets()
  wanted = range(circuit.n_qubits) if qubits is None else qubits
  read = sorted({j for i in wanted for j in parity_sets[i]})
  z = {j: -sinpi(columns[j]) for j in read}  # <Z_j> of the product state before the CNOTs.
  out = []
  for i in wanted:
    prod = z[parity_sets[i][0]]
    for j in parity_sets[i][1:]:
      prod = prod * z[j]
    out.append(prod)
  return out


__all__ = ["cospi", "expectation_columns", "expectations", "reduce_turns", "sincospi", "sinpi"]
