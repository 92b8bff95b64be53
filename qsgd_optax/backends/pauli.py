"""Pauli backend: an exact closed form of any perturbation circuit, compiled once.

Heisenberg picture. ``<Z_i> = <0| U^dag Z_i U |0>``, so the measured ``Z_i`` is
conjugated backwards through the gates, last gate first. Every operator on
the way is a sum of Pauli strings (letters ``I, X, Y, Z`` on each qubit) whose
coefficients are polynomials in ``s_j = sin(phi_j)`` and ``c_j = cos(phi_j)``
with integer coefficients:

* a CNOT maps a Pauli string to one Pauli string, up to a sign (on the
  control and target letters: ``XI -> XX``, ``IZ -> ZZ``, ``IY -> ZY``,
  ``XZ -> -YY``, ``YY -> -XZ``, ...; the table is :data:`CNOT_TABLE`);
* ``RY(phi) = exp(-i phi Y / 2)`` keeps ``I`` and ``Y`` and splits the
  letters it does not commute with, ``X -> c X + s Z`` and
  ``Z -> c Z - s X``; ``RZ(phi)`` splits ``X -> c X - s Y`` and
  ``Y -> c Y + s X``.

Equal (string, monomial) pairs are merged after each gate and zero
coefficients dropped, with exact integer arithmetic. The gates before the
first CNOT leave a product state, so instead of walking through them each
qubit's Bloch vector ``(<X>, <Y>, <Z>)`` is evolved forwards (``|0>`` is
``(0, 0, 1)``; ``H`` maps it to ``(z, -y, x)``, ``RY`` to
``(c x + s z, y, c z - s x)``, ``RZ`` to ``(c x - s y, s x + c y, z)``) and
each letter of a string is replaced by that component. For the perturbation
circuit, ``H`` then ``RY(phi_j) RZ(phi_j)`` give ``(c_j^2, c_j s_j, -s_j)``:
with the ``|+>`` state after the Hadamards only strings of ``I`` and ``X``
would survive, and these are the ones the first rotation layer turns them
into. The result is, for every measured qubit,

    <Z_i> = sum_k coef_k * prod_j s_j^(a_kj) c_j^(b_kj),

with both ``RY`` and ``RZ`` of qubit ``j`` in every layer contributing to the
same ``s_j``, ``c_j`` (``phi_j = pi * t_j`` in every layer), so monomials from
different layers merge. :func:`term_count` is the number of monomials summed
over the measured qubits: 2 per qubit and layer at most for a product circuit,
``2**(n+1) - 2`` for the paper's chain of ``n`` qubits with two layers.

Evaluation is one elementwise ``jnp`` expression over the grouped angles
``t`` of shape ``(..., n_qubits)``: ``s_j`` and ``c_j`` once per qubit (the
range-reduced polynomials of :func:`~qsgd_optax.backends.analytic.sincospi`
in float32, ``jnp.sin``/``jnp.cos`` in float64), then each polynomial in
greedy multivariate Horner form (``P = v * Q + R`` on the variable found in
most terms), with sub-polynomials shared between the measured qubits.

References:
  Pamuk et al., `Superpositional Gradient Descent
  <https://arxiv.org/abs/2511.01918>`_, 2025.

  Gottesman, `The Heisenberg representation of quantum computers
  <https://arxiv.org/abs/quant-ph/9807006>`_, 1998.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, Optional, Union, cast

import jax
import jax.numpy as jnp
import numpy as np

from qsgd_optax._src.gates import Gate, Gates
from qsgd_optax.backends import analytic

I, X, Y, Z = 0, 1, 2, 3

# CNOT (control, target) conjugation of two letters: (sign, control', target').
CNOT_TABLE: dict[tuple[int, int], tuple[int, int, int]] = {
  (I, I): (1, I, I),
  (I, X): (1, I, X),
  (I, Y): (1, Z, Y),
  (I, Z): (1, Z, Z),
  (X, I): (1, X, X),
  (X, X): (1, X, I),
  (X, Y): (1, Y, Z),
  (X, Z): (-1, Y, Y),
  (Y, I): (1, Y, X),
  (Y, X): (1, Y, I),
  (Y, Y): (-1, X, Z),
  (Y, Z): (1, X, Y),
  (Z, I): (1, Z, I),
  (Z, X): (1, Z, X),
  (Z, Y): (1, I, Y),
  (Z, Z): (1, I, Z),
}

# Rotation conjugation: letter -> (letter of its sin term, sign of that term);
# the cos term keeps the letter. Letters not listed commute with the gate.
_SPLITS = {"RY": {X: (Z, 1), Z: (X, -1)}, "RZ": {X: (Y, -1), Y: (X, 1)}}

# Above this many (string, monomial) terms compiling stops (TermLimitError):
# the jnp expression (and XLA's compile time) grows with the terms.
MAX_TERMS = 1 << 14


# (output, letters, exps, coef) rows of a _Terms.
_Rows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class TermLimitError(ValueError):
  """The compiled form would exceed the allowed number of terms.

  Examples:
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends import pauli
    >>> try:
    ...   pauli.compile_gates(Gates.build(4, "ring", 3).sequence(), 4, 4, max_terms=8)
    ... except pauli.TermLimitError:
    ...   print("too many terms")
    too many terms
  """


@dataclasses.dataclass(frozen=True, eq=False)
class Compiled:
  """The closed form of a circuit: ``<Z_i> = sum_k coef_k prod_p s_p^a c_p^b``.

  Attributes:
    n_qubits: measured qubits.
    n_params: angles the gates read.
    output: ``(T,)`` measured qubit of each term.
    coef: ``(T,)`` integer coefficients.
    exps: ``(T, n_params, 2)`` powers of ``sin`` (``[..., 0]``) and ``cos``
      (``[..., 1]``) of each angle.

  Examples:
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends import pauli
    >>> compiled = pauli.compile_circuit(Gates.build(2, "chain"))
    >>> compiled.n_qubits, compiled.n_params, compiled.terms
    (2, 2, 2)
  """

  n_qubits: int
  n_params: int
  output: np.ndarray
  coef: np.ndarray
  exps: np.ndarray

  @property
  def terms(self) -> int:
    return int(self.coef.size)

  def polynomials(self) -> list[dict[tuple[int, ...], int]]:
    """Per measured qubit, ``{flattened exponents: coefficient}``."""
    polys: list[dict[tuple[int, ...], int]] = [{} for _ in range(self.n_qubits)]
    flat = self.exps.reshape(self.terms, -1)
    for o, k, e in zip(self.output.tolist(), self.coef.tolist(), flat.tolist()):
      polys[o][tuple(e)] = k
    return polys


class _Terms:
  """Sum of (measured qubit, Pauli string, monomial) terms as flat arrays."""

  def __init__(
    self,
    output: np.ndarray,
    letters: np.ndarray,
    exps: np.ndarray,
    coef: np.ndarray,
    limit: int,
  ) -> None:
    self.output, self.letters, self.exps, self.coef = output, letters, exps, coef
    self.limit = limit
    self._check()

  def _check(self) -> None:
    if self.coef.size > self.limit:
      raise TermLimitError(f"more than {self.limit} Pauli terms")
    if self.coef.size and np.abs(self.coef).astype(np.float64).sum() >= 2.0**62:
      raise TermLimitError("integer coefficients would overflow int64")
    if self.exps.size and self.exps.max() >= 255:  # Stored as uint8.
      raise TermLimitError("a sin/cos power past 254 (more than 127 layers)")

  def take(self, rows: np.ndarray) -> _Rows:
    return (self.output[rows], self.letters[rows], self.exps[rows], self.coef[rows])

  def replace(self, parts: Sequence[_Rows]) -> None:
    self.output, self.letters, self.exps, self.coef = (np.concatenate(p) for p in zip(*parts))
    self.merge()

  def merge(self) -> None:
    """Sums equal (output, string, monomial) terms, drops zero coefficients."""
    t = self.coef.size
    if t:
      key = np.concatenate(
        [
          self.output.astype(np.uint16).view(np.uint8).reshape(t, 2),
          self.letters,
          self.exps.reshape(t, -1),
        ],
        axis=1,
      )
      key = np.ascontiguousarray(key).view(np.dtype((np.void, key.shape[1]))).ravel()
      _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
      coef = np.zeros(first.size, np.int64)
      np.add.at(coef, inverse.ravel(), self.coef)
      keep = coef != 0
      self.output, self.letters, self.exps = (
        a[first[keep]] for a in (self.output, self.letters, self.exps)
      )
      self.coef = coef[keep]
    self._check()

  def cnot(self, control: int, target: int) -> None:
    sign, new_c, new_t = _CNOT_ARRAYS
    a, b = self.letters[:, control], self.letters[:, target]
    self.coef = self.coef * sign[a, b]
    self.letters = self.letters.copy()
    self.letters[:, control], self.letters[:, target] = new_c[a, b], new_t[a, b]

  def rotate(self, name: str, qubit: int, param: Optional[int]) -> None:
    letter = self.letters[:, qubit]
    split = np.zeros(letter.shape, bool)
    for l in _SPLITS[name]:
      split |= letter == l
    if not split.any():
      return
    keep = self.take(~split)
    output, letters, exps, coef = self.take(split)
    cos_exps = exps.copy()
    cos_exps[:, param, 1] += 1
    sin_letters, sin_exps, sin_coef = letters.copy(), exps.copy(), coef.copy()
    sin_exps[:, param, 0] += 1
    for l, (new, sign) in _SPLITS[name].items():
      rows = letters[:, qubit] == l
      sin_letters[rows, qubit] = new
      sin_coef[rows] *= sign
    self.replace(
      [keep, (output, letters, cos_exps, coef), (output, sin_letters, sin_exps, sin_coef)]
    )

  def substitute(self, qubit: int, bloch: Sequence[_Poly]) -> None:
    """Replaces each letter on ``qubit`` by its Bloch component polynomial."""
    letter = self.letters[:, qubit].copy()
    self.letters[:, qubit] = I
    parts = [self.take(letter == I)]
    for l in (X, Y, Z):
      output, letters, exps, coef = self.take(letter == l)
      for mono, k in bloch[l - 1].items():
        shift = np.asarray(mono, exps.dtype).reshape(exps.shape[1:])
        parts.append((output, letters, exps + shift, coef * k))
    self.replace(parts)


def _cnot_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  sign, new_c, new_t = (np.zeros((4, 4), dtype) for dtype in (np.int64, np.uint8, np.uint8))
  for (a, b), (s, c, t) in CNOT_TABLE.items():
    sign[a, b], new_c[a, b], new_t[a, b] = s, c, t
  return sign, new_c, new_t


_CNOT_ARRAYS = _cnot_arrays()

_Poly = dict[Any, int]
# A polynomial's value: a Python int for a constant, else an array.
_Value = Union[int, jax.Array]


def _poly_mul_var(poly: _Poly, param: int, which: int, n_params: int) -> _Poly:
  out = {}
  for mono, k in poly.items():
    m = np.array(mono).reshape(n_params, 2)
    m[param, which] += 1
    out[tuple(m.reshape(-1).tolist())] = k
  return out


def _poly_add(*polys: tuple[int, _Poly]) -> _Poly:
  out: _Poly = {}
  for sign, poly in polys:
    for mono, k in poly.items():
      out[mono] = out.get(mono, 0) + sign * k
  return {m: k for m, k in out.items() if k}


def _bloch(gates: Sequence[Gate], n_params: int) -> list[_Poly]:
  """Bloch vector ``(<X>, <Y>, <Z>)`` of one qubit after single-qubit gates
  on ``|0>``, as polynomials ``{flattened (sin, cos) exponents: coef}``."""
  one = (0,) * (2 * n_params)
  x: _Poly = {}
  y: _Poly = {}
  z: _Poly = {one: 1}
  for gate in gates:
    if gate.name == "H":
      x, y, z = z, {m: -k for m, k in y.items()}, x
      continue
    if gate.param is None:
      raise ValueError(f"gate {gate.name} needs an angle")
    p = gate.param
    s = lambda q, p=p: _poly_mul_var(q, p, 0, n_params)
    c = lambda q, p=p: _poly_mul_var(q, p, 1, n_params)
    if gate.name == "RY":
      x, z = _poly_add((1, c(x)), (1, s(z))), _poly_add((1, c(z)), (-1, s(x)))
    elif gate.name == "RZ":
      x, y = _poly_add((1, c(x)), (-1, s(y))), _poly_add((1, s(x)), (1, c(y)))
    else:
      raise ValueError(f"Unknown gate {gate.name!r}; known: H, RY, RZ, CNOT.")
  return [x, y, z]


def compile_gates(
  gates: Sequence[Gate], n_qubits: int, n_params: int, max_terms: Optional[int] = None
) -> Compiled:
  """Compiles a gate list on ``|0...0>`` into the closed form of every ``<Z_i>``.

  Args:
    gates: the circuit (``H``, ``RY``, ``RZ``, ``CNOT``); rotations read
      angle ``gate.param``.
    n_qubits: number of qubits.
    n_params: number of angles.
    max_terms: raise :class:`TermLimitError` when more (string, monomial)
      terms than this are alive at any point (default :data:`MAX_TERMS`).

  Returns:
    The :class:`Compiled` form.

  Examples:
    >>> from qsgd_optax import Gate
    >>> from qsgd_optax.backends.pauli import compile_gates
    >>> compiled = compile_gates([Gate("H", (0,)), Gate("RY", (0,), 0)], 1, 1)
    >>> compiled.polynomials()  # <Z_0> = -sin(phi_0)
    [{(1, 0): -1}]
  """
  first_cnot = next((k for k, g in enumerate(gates) if g.name == "CNOT"), len(gates))
  prep: list[list[Gate]] = [[] for _ in range(n_qubits)]
  for gate in gates[:first_cnot]:
    prep[gate.wires[0]].append(gate)
  terms = _Terms(
    np.arange(n_qubits, dtype=np.int64),
    np.where(np.eye(n_qubits, dtype=bool), Z, I).astype(np.uint8),
    np.zeros((n_qubits, n_params, 2), np.uint8),
    np.ones(n_qubits, np.int64),
    MAX_TERMS if max_terms is None else max_terms,
  )
  for gate in reversed(gates[first_cnot:]):
    if gate.name == "CNOT":
      terms.cnot(*gate.wires)
    elif gate.name in _SPLITS:
      terms.rotate(gate.name, gate.wires[0], gate.param)
    else:
      raise ValueError(f"pauli backend: unsupported gate {gate.name!r} after the first CNOT.")
  for q in range(n_qubits):
    terms.substitute(q, _bloch(prep[q], n_params))
  order = np.lexsort((terms.coef, *terms.exps.reshape(terms.coef.size, -1).T[::-1], terms.output))
  return Compiled(
    n_qubits, n_params, terms.output[order], terms.coef[order], terms.exps[order].astype(np.int16)
  )


@functools.lru_cache(maxsize=128)
def _compile_cached(circuit: Gates, max_terms: int) -> Compiled:
  return compile_gates(circuit.sequence(), circuit.n_qubits, circuit.n_qubits, max_terms)


def clear_cache() -> None:
  """Forgets the compiled forms kept by :func:`compile_circuit`.

  Returns:
    None.

  Examples:
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends.pauli import clear_cache, compile_circuit
    >>> c = Gates.build(2, "chain", layers=2)
    >>> first = compile_circuit(c)
    >>> compile_circuit(c) is first
    True
    >>> clear_cache()
    >>> compile_circuit(c) is first
    False
  """
  _compile_cached.cache_clear()


def compile_circuit(circuit: Gates, max_terms: Optional[int] = None) -> Compiled:
  """The closed form of ``circuit``, compiled once and cached (see the module docstring).

  Args:
    circuit: the circuit.
    max_terms: the most terms allowed (default :data:`MAX_TERMS`).

  Returns:
    The :class:`Compiled` form (cached until :func:`clear_cache`).

  Raises:
    TermLimitError: past ``max_terms`` terms.

  Examples:
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends.pauli import compile_circuit
    >>> compile_circuit(Gates.build(2, "chain", layers=2)).terms
    6
  """
  return _compile_cached(circuit, MAX_TERMS if max_terms is None else max_terms)


def term_count(circuit: Gates, max_terms: Optional[int] = None) -> Optional[int]:
  """Number of monomials in the closed form, summed over the measured qubits.

  Args:
    circuit: the circuit.
    max_terms: give up (return ``None``) when compiling needs more terms
      (default :data:`MAX_TERMS`).

  Returns:
    The count, or ``None`` past ``max_terms``.

  Examples:
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends.pauli import term_count
    >>> term_count(Gates.build(4, "chain", layers=2))
    30
  """
  try:
    return compile_circuit(circuit, max_terms).terms
  except TermLimitError:
    return None


class _Emitter:
  """Builds ``jnp`` expressions of polynomials in ``s_p``, ``c_p``, sharing
  repeated sub-polynomials (greedy multivariate Horner)."""

  def __init__(self, columns: Sequence[jax.Array]) -> None:
    self.columns = columns
    self.sincos: dict[int, tuple[jax.Array, jax.Array]] = {}  # p -> (s_p, c_p), when first read
    self.memo: dict[frozenset, Any] = {}

  def variable(self, v: int) -> jax.Array:
    """Flat index ``2 p + {0: sin, 1: cos}``."""
    p = v // 2
    if p not in self.sincos:
      self.sincos[p] = analytic.sincospi(self.columns[p])
    return self.sincos[p][v % 2]

  def poly(self, poly: dict[tuple[int, ...], int]) -> Optional[_Value]:
    if not poly:
      return None  # Zero.
    key = frozenset(poly.items())
    if key not in self.memo:
      self.memo[key] = self._build(poly)
    return self.memo[key]

  def _build(self, poly: dict[tuple[int, ...], int]) -> _Value:
    if len(poly) == 1:
      ((mono, k),) = poly.items()
      if not any(mono):
        return k  # A constant, still a Python int.
    counts = np.zeros(len(next(iter(poly))), np.int64)
    for mono in poly:
      counts += np.asarray(mono) > 0
    v = int(np.argmax(counts))
    with_v, without = {}, {}
    for mono, k in poly.items():
      if mono[v]:
        m = list(mono)
        m[v] -= 1
        with_v[tuple(m)] = k
      else:
        without[mono] = k
    # with_v is never empty (v is in most terms, and a lone constant returned
    # above), so its polynomial is never None.
    q = _times(self.variable(v), cast(_Value, self.poly(with_v)))
    return _plus(q, self.poly(without))


def _times(var: jax.Array, q: _Value) -> jax.Array:
  if isinstance(q, int):
    return var if q == 1 else -var if q == -1 else q * var
  return var * q


def _plus(a: _Value, b: Optional[_Value]) -> _Value:
  if b is None:
    return a
  if isinstance(b, int) and not isinstance(a, int) and b < 0:
    return a - (-b)
  return a + b


def expectations(circuit: Gates, t: jax.Array) -> jax.Array:
  """``<Z_i>`` of ``circuit`` at angles ``pi * t``, from the compiled form.

  Args:
    circuit: any circuit (compiling fails with :class:`TermLimitError` on one
      with more than :data:`MAX_TERMS` terms).
    t: angles in turns of shape ``(..., n_qubits)``, reduced by
      :func:`~qsgd_optax.backends.analytic.reduce_turns`.

  Returns:
    An array like ``t``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends.pauli import expectations
    >>> c = Gates.build(2, "chain", layers=2)
    >>> expectations(c, jnp.array([0.25, 0.5])).round(4)
    Array([-0.5   ,  0.3536], dtype=float32)
  """
  compiled = compile_circuit(circuit)
  return evaluate(compiled, t)


def evaluate(compiled: Compiled, t: jax.Array) -> jax.Array:
  """Evaluates a :class:`Compiled` form at angles ``pi * t``.

  Args:
    compiled: the closed form.
    t: angles in turns of shape ``(..., n_params)``, reduced to ``[-1, 1]``.

  Returns:
    Shape ``(..., n_qubits)``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends.pauli import compile_circuit, evaluate
    >>> compiled = compile_circuit(Gates.build(2, "chain", layers=2))
    >>> evaluate(compiled, jnp.array([0.25, 0.5])).round(4)
    Array([-0.5   ,  0.3536], dtype=float32)
  """
  # Per column, so that XLA keeps (...,) intermediates fused rather than
  # materialising sin/cos of the whole (..., n_params) block.
  columns = [t[..., p] for p in range(compiled.n_params)]
  return jnp.stack(evaluate_columns(compiled, columns), axis=-1)


def evaluate_columns(
  compiled: Compiled, columns: Sequence[jax.Array], qubits: Optional[Sequence[int]] = None
) -> list[jax.Array]:
  """:func:`evaluate` on one array of angles per parameter.

  Args:
    compiled: the closed form.
    columns: one array of angles per parameter, all of one shape, in turns,
      reduced to ``[-1, 1]``.
    qubits: the qubits ``i`` to return, ``None`` for all. Only their
      polynomials, and the sines and cosines these read, are built.

  Returns:
    One array of ``<Z_i>`` per qubit asked for, of the columns' shape and dtype.

  Examples:
    >>> import jax.numpy as jnp
    >>> from qsgd_optax import Gates
    >>> from qsgd_optax.backends.pauli import compile_circuit, evaluate_columns
    >>> compiled = compile_circuit(Gates.build(2, "chain", layers=2))
    >>> [z.round(4) for z in evaluate_columns(compiled, [jnp.array([0.25]), jnp.array([0.5])])]
    [Array([-0.5], dtype=float32), Array([0.3536], dtype=float32)]
  """
  emit = _Emitter(columns)
  shape, dtype = columns[0].shape, columns[0].dtype
  polynomials = compiled.polynomials()
  if qubits is None:  # Every sine and cosine, in the columns' order.
    for v in range(0, 2 * len(columns), 2):
      emit.variable(v)
  out = []
  for i in range(compiled.n_qubits) if qubits is None else qubits:
    value = emit.poly(polynomials[i])
    out.append(jnp.broadcast_to(jnp.asarray(0 if value is None else value, dtype), shape))
  return out


__all__ = [
  "CNOT_TABLE",
  "MAX_TERMS",
  "Compiled",
  "TermLimitError",
  "clear_cache",
  "compile_circuit",
  "compile_gates",
  "evaluate",
  "evaluate_columns",
  "expectations",
  "term_count",
]
