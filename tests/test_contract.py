"""The optimizer contract, checked alike for every form of the optimizer.

As ``optax/contrib/_common_test.py`` does for optax's contrib optimizers: one
table of forms (:func:`qsgd` at each placement, :func:`scale_by_qsgd` chained
to AdamW, :func:`superpose` chained with ``optax.adamw``), each with an exact,
an entangled and a sampled circuit, and every check run on every pair. Each
pair must: give the same update under ``jit`` as eagerly; work under
``optax.inject_hyperparams``, ``optax.MultiSteps`` and ``optax.masked``; keep
float32 and bfloat16 dtypes; leave non-float and ``None`` leaves to the
optimizer around the perturbation; keep its state's structure across steps (so
it runs in ``jax.lax.scan`` and restores from checkpoints); give finite updates
for finite inputs; and refuse a bad argument when it is built.

Compiling is what costs (seconds for a sampled circuit's binomial draws): each
circuit's updates are compiled once, all forms in one ``jax.jit``, and shared by
the checks; the rest runs eagerly, where jax reuses each operation's executable
across the pairs.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from qsgd_optax import PLACEMENTS, Circuit, qsgd, scale_by_qsgd, superpose

LR, QUANTUM_WEIGHT, WEIGHT_DECAY, KEY = 1e-2, 0.5, 1e-2, 3


class Form(NamedTuple):
  """One way to use the library: ``wrap(factory(**kwargs, circuit=..., ...))``."""

  factory: Callable[..., optax.GradientTransformation]
  kwargs: dict[str, Any]
  wrap: Callable[[optax.GradientTransformation], optax.GradientTransformation]
  # The hyperparameters optax.inject_hyperparams injects, and new values for some.
  injected: frozenset
  changed: dict[str, float]

  def build(self, circuit, /, factory=None, **overrides):
    kwargs = dict(self.kwargs, quantum_weight=QUANTUM_WEIGHT, circuit=circuit, key=KEY)
    return self.wrap((factory or self.factory)(**{**kwargs, **overrides}))


ADAM = frozenset({"b1", "b2", "eps", "eps_root", "quantum_weight", "key"})
FORMS = {
  **{
    f"qsgd-{placement}": Form(
      qsgd,
      dict(learning_rate=LR, weight_decay=WEIGHT_DECAY, placement=placement),
      lambda tx: tx,
      ADAM | {"learning_rate", "weight_decay"},
      dict(learning_rate=5e-2, quantum_weight=-0.3),
    )
    for placement in PLACEMENTS
  },
  "scale_by_qsgd": Form(
    scale_by_qsgd,
    {},
    lambda tx: optax.chain(
      tx, optax.add_decayed_weights(WEIGHT_DECAY), optax.scale_by_learning_rate(LR)
    ),
    ADAM,
    dict(quantum_weight=-0.3),
  ),
  "superpose": Form(
    superpose,
    {},
    lambda tx: optax.chain(tx, optax.adamw(LR, weight_decay=WEIGHT_DECAY)),
    frozenset({"quantum_weight", "key"}),
    dict(quantum_weight=-0.3),
  ),
}
CIRCUITS = {
  "exact": Circuit(),
  "entangled": Circuit(entanglement="chain"),
  "sampled": Circuit(shots=16),
}
PAIRS = [(form, circuit) for circuit in CIRCUITS for form in FORMS]
# A circuit's tests share its compiled updates: one pytest-xdist worker runs them all.
same_worker = lambda circuit: pytest.mark.xdist_group(f"contract-{circuit}")
every_pair = pytest.mark.parametrize(
  ("form", "circuit"),
  [pytest.param(f, c, id=f"{f}-{c}", marks=same_worker(c)) for f, c in PAIRS],
)
every_form = pytest.mark.parametrize(
  "form", [pytest.param(f, marks=same_worker("exact")) for f in FORMS]
)

# A float32 leaf of rows of 7 (a group of 4 qubits and a padded group of 3), a
# bfloat16 leaf and None. "a" is the first leaf: optax.masked, masking the
# others, leaves it the first (its shots are drawn with the same key).
PARAMS = {
  "a": jnp.linspace(-2.0, 2.0, 35, dtype=jnp.float32).reshape(5, 7),
  "b": jnp.array([0.3, -1.2, 2.0], jnp.bfloat16),
  "n": None,
}
FLOATS = ("a", "b")


def gradients(shift=0.0):
  """Gradients like PARAMS, multiples of 1/8: their means are exact, in bfloat16 too."""
  a = np.arange(35, dtype=np.float32).reshape(5, 7) % 9 - 4
  return {
    "a": jnp.asarray((a + shift) / 8, jnp.float32),
    "b": jnp.asarray((np.array([1.0, -3.0, 5.0]) + shift) / 8, jnp.bfloat16),
    "n": None,
  }


GRADS = gradients()


def moved(params, by):
  return {k: None if x is None else (x + by).astype(x.dtype) for k, x in params.items()}


# Two steps' gradients and parameters. Adam's step is sign(g) at the first, and
# unchanged by a factor of g that is the same at every step: the parameters
# move, so that the modulation, a function of them, can be seen.
STEPS = ((GRADS, PARAMS), (gradients(3.0), moved(PARAMS, 0.3)))
# Finite values from the smallest subnormal to float32's largest.
EXTREMES = [0.0, -0.0, 1e-45, -1e-40, 1e-30, 1e30, -1e30, 3e38, -3.4e38, 0.5, -7.25, 65504.0]


def extreme(values, shape, dtype):
  return jnp.asarray(np.resize(np.array(values, np.float32), shape), dtype)


EXTREME_PARAMS = dict(
  PARAMS, a=extreme(EXTREMES, (5, 7), jnp.float32), b=extreme([1e30, -3e38, 1e-40], 3, jnp.bfloat16)
)
EXTREME_GRADS = dict(
  GRADS,
  a=extreme(EXTREMES[::-1], (5, 7), jnp.float32),
  b=extreme([3e38, -1e-40, -3e38], 3, jnp.bfloat16),
)


class Compiled:
  """One ``jax.jit`` of ``fns[form](*args)`` for every form at once, called for
  one form with the others at their ``defaults`` (the same shapes: nothing is
  traced or compiled again)."""

  def __init__(self, fns, defaults):
    self.defaults = defaults
    self._call = jax.jit(lambda inputs: {form: fns[form](*args) for form, args in inputs.items()})

  def __call__(self, form, *args):
    return self._call({**self.defaults, form: args})[form]


@functools.cache
def optimizers(circuit):
  """Every form's optimizer with ``circuit``, its first state, and their updates compiled."""
  txs = {form: FORMS[form].build(CIRCUITS[circuit]) for form in FORMS}
  states = {form: tx.init(PARAMS) for form, tx in txs.items()}
  defaults = {form: (GRADS, state, PARAMS) for form, state in states.items()}
  return txs, states, Compiled({form: tx.update for form, tx in txs.items()}, defaults)


class Pair:
  """A form with a circuit: its optimizer, first state, eager steps (updates
  and state after each of STEPS) and compiled ``update(grads, state, params=PARAMS)``."""

  def __init__(self, form, circuit):
    self.form, self.circuit = FORMS[form], CIRCUITS[circuit]
    txs, states, compiled = optimizers(circuit)
    self.tx, self.state = txs[form], states[form]
    self.eager, state = [], self.state
    for grads, params in STEPS:
      self.eager.append(self.tx.update(grads, state, params))
      state = self.eager[-1][1]
    self.update = lambda grads, state, params=PARAMS: compiled(form, grads, state, params)


@functools.cache
def pair(form, circuit):
  return Pair(form, circuit)


def assert_close(actual, desired, ulps=4, as_params=False):
  """Equal trees; float leaves within ``ulps`` of the leaf's largest entry (XLA
  fuses the compiled update, whose roundings differ from the eager operations').
  ``as_params``: in the ulps of the parameter a leaf belongs to (a float32
  leaf computed from bfloat16 values is as exact as bfloat16)."""
  assert jax.tree.structure(actual) == jax.tree.structure(desired)
  leaves = jax.tree_util.tree_leaves_with_path(actual)
  for (path, x), y in zip(leaves, jax.tree.leaves(desired)):
    assert x.dtype == y.dtype and x.shape == y.shape, (x, y)
    if not jnp.issubdtype(x.dtype, jnp.floating):
      np.testing.assert_array_equal(x, y)
      continue
    names = {getattr(k, "key", None) for k in path} & set(FLOATS)
    dtype = PARAMS[names.pop()].dtype if as_params and names else x.dtype
    eps = float(jnp.finfo(dtype).eps)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    bound = ulps * eps * np.abs(y).max(initial=0.0)
    np.testing.assert_array_less(np.abs(x - y), bound + np.finfo(np.float64).tiny)


def assert_equal(actual, desired):
  assert jax.tree.structure(actual) == jax.tree.structure(desired)
  for x, y in zip(jax.tree.leaves(actual), jax.tree.leaves(desired)):
    assert x.dtype == y.dtype
    np.testing.assert_array_equal(x, y)


@every_pair
def test_jit_equals_eager(form, circuit):
  """Compiled and eager, two steps give the same updates and states (within 4
  ulps of each leaf's largest entry)."""
  p = pair(form, circuit)
  state = p.state
  for (grads, params), eager in zip(STEPS, p.eager):
    jitted, state = p.update(grads, state, params)
    assert_close((jitted, state), eager)


def is_injected(x):
  return isinstance(x, optax.InjectStatefulHyperparamsState)


def hyperparams(state):
  """The injected values in ``state`` (a dict, changed in place by the tests)."""
  (injected,) = [x for x in jax.tree.leaves(state, is_leaf=is_injected) if is_injected(x)]
  return injected.hyperparams


def inner(state):
  """``state`` as the state of the optimizer built with the injected values."""
  return jax.tree.map(lambda x: x.inner_state if is_injected(x) else x, state, is_leaf=is_injected)


def injected(form, circuit):
  return FORMS[form].build(CIRCUITS[circuit], factory=optax.inject_hyperparams(FORMS[form].factory))


def built_with(form, circuit, state):
  """The optimizer built with the values injected in ``state``, as given:
  float32 arrays (concrete, or traced under jit)."""
  values = {k: v for k, v in hyperparams(state).items() if k != "key"}
  return FORMS[form].build(CIRCUITS[circuit], **values)


@every_pair
def test_inject_hyperparams(form, circuit):
  """Every number is injected, not the circuit nor a string, and each step is
  the optimizer built with the state's values: changing them changes the
  update so. Traced as under jit, too (traced values pass the checks)."""
  tx = injected(form, circuit)
  state = tx.init(PARAMS)
  assert set(hyperparams(state)) == FORMS[form].injected
  # (Injected float32 values make the bfloat16 leaf's moments float32 after a
  # step, as they do optax.adamw's: dtypes are checked without injection.)
  traced = jax.eval_shape(tx.update, GRADS, jax.eval_shape(tx.init, PARAMS), PARAMS)
  assert traced == jax.eval_shape(tx.update, GRADS, state, PARAMS)
  for step, (grads, params) in enumerate(STEPS):
    if step:
      for name, value in FORMS[form].changed.items():
        hyperparams(state)[name] = jnp.float32(value)
      unchanged = FORMS[form].build(CIRCUITS[circuit]).update(grads, inner(state), params)[0]
    want, want_state = built_with(form, circuit, state).update(grads, inner(state), params)
    got, state = tx.update(grads, state, params)
    assert_equal(got, want)
    assert_equal(inner(state), want_state)
  assert not np.allclose(got["a"], unchanged["a"])


@functools.cache
def compiled_injected():
  """Two steps of each form's injected update, its values changed in between,
  and, in the same program, the optimizer built with the values in the state
  (traced) at each step; with the exact circuit (the circuit is static)."""
  txs = {form: injected(form, "exact") for form in FORMS}

  def steps(form):
    def fn(steps, state, changed):
      out = []
      for step, (grads, params) in enumerate(steps):
        if step:
          hyperparams(state).update(changed)
        want = built_with(form, "exact", state).update(grads, inner(state), params)
        before = state
        got, state = txs[form].update(grads, state, params)
        out.append((before, (got, inner(state)), want))
      return out

    return fn

  states = {form: tx.init(PARAMS) for form, tx in txs.items()}
  changed = {form: {k: jnp.float32(v) for k, v in FORMS[form].changed.items()} for form in FORMS}
  defaults = {form: (STEPS, states[form], changed[form]) for form in FORMS}
  return Compiled({form: steps(form) for form in FORMS}, defaults)


@every_form
def test_inject_hyperparams_under_jit(form):
  """Compiled, each step is the optimizer built with the state's values, before
  and after they change: exactly, with the values traced in the same program,
  and as the eager update with the values as given."""
  update = compiled_injected()
  for (grads, params), (before, got, want) in zip(STEPS, update(form, *update.defaults[form])):
    assert_equal(got, want)
    eager = built_with(form, "exact", before).update(grads, inner(before), params)
    assert_close(got, eager, as_params=True)


def compiled_inner(p):
  """``p``'s optimizer, its update run compiled (``p.update``) even under
  ``jax.disable_jit``."""

  def update(grads, state, params=None, **extra_args):
    del extra_args
    with jax.disable_jit(False):
      return p.update(grads, state, params)

  return optax.GradientTransformationExtraArgs(p.tx.init, update)


# Two cycles of MultiSteps' gradients, whose running means are exact, the
# parameters moving between the cycles.
CYCLES = (
  ([gradients(1.0), gradients(-3.0), gradients(-1.0)], gradients(-1.0), STEPS[0][1]),
  ([gradients(5.0), gradients(1.0), gradients(3.0)], gradients(3.0), STEPS[1][1]),
)


@every_pair
def test_multisteps(form, circuit):
  """k - 1 zero updates, then the optimizer's step on the mean gradient, twice.

  ``optax.MultiSteps(tx)`` is traced as under jit; its steps run MultiSteps'
  own operations eagerly around the compiled update (not compiling the update
  again inside MultiSteps' lax.cond, for every pair)."""
  p = pair(form, circuit)
  k = len(CYCLES[0][0])
  whole = optax.MultiSteps(p.tx, every_k_schedule=k)
  state = whole.init(PARAMS)
  traced = jax.eval_shape(whole.update, GRADS, state, PARAMS)
  assert traced == jax.eval_shape(lambda: (GRADS, state))
  tx = optax.MultiSteps(compiled_inner(p), every_k_schedule=k)
  state, want_state = tx.init(PARAMS), p.state
  for grads, mean, params in CYCLES:
    with jax.disable_jit():
      for g in grads[:-1]:
        zero, state = tx.update(g, state, params)
        assert zero["n"] is None
        for leaf in jax.tree.leaves(zero):
          np.testing.assert_array_equal(leaf, 0)
      got, state = tx.update(grads[-1], state, params)
    want, want_state = p.update(mean, want_state, params)
    assert_equal(got, want)
    assert_equal(state.inner_opt_state, want_state)


@every_pair
def test_masked(form, circuit):
  """Masked leaves, float or int, pass through untouched; the others get the
  optimizer's update."""
  p = pair(form, circuit)
  tx = optax.masked(p.tx, {"a": True, "b": False, "i": False, "n": None})
  state = tx.init(dict(PARAMS, i=jnp.array([3, -1])))
  for (grads, params), (want, _) in zip(STEPS, p.eager):
    grads, params = dict(grads, i=jnp.array([2, -4])), dict(params, i=jnp.array([3, -1]))
    got, state = tx.update(grads, state, params)
    assert got["b"] is grads["b"] and got["i"] is grads["i"] and got["n"] is None
    assert_close(got["a"], want["a"])


@every_pair
def test_dtypes_are_kept(form, circuit):
  """float32 and bfloat16 updates and moments keep their parameters' dtypes, and
  every leaf of the state its dtype, eagerly and compiled."""
  p = pair(form, circuit)
  for updates, state in (*p.eager, p.update(GRADS, p.state)):
    for name in FLOATS:
      assert updates[name].dtype == PARAMS[name].dtype, name
      for moment in ("mu", "nu"):
        assert optax.tree.get(state, moment)[name].dtype == PARAMS[name].dtype, (moment, name)
    for before, after in zip(jax.tree.leaves(p.state), jax.tree.leaves(state)):
      assert after.dtype == before.dtype


@every_pair
def test_non_float_and_none_leaves_are_not_perturbed(form, circuit):
  """An int leaf gets the update it gets without the perturbation (optax's,
  which changes the dtype of its moments: so it is only here); None stays None."""
  p = pair(form, circuit)
  unperturbed = p.form.build(p.circuit, quantum_weight=0.0)
  params = dict(PARAMS, i=jnp.array([3, -1]))
  state, unperturbed_state = p.tx.init(params), unperturbed.init(params)
  for step, (grads, params) in enumerate(STEPS):
    grads, params = dict(grads, i=jnp.array([2, -4]) + step), dict(params, i=jnp.array([3, -1]))
    want, unperturbed_state = unperturbed.update(grads, unperturbed_state, params)
    got, state = p.tx.update(grads, state, params)
    assert got["i"].dtype == want["i"].dtype
    np.testing.assert_array_equal(got["i"], want["i"])
    assert got["n"] is None
  assert not np.allclose(got["a"], want["a"])


def types(state):
  return jax.tree.structure(state), [jax.typeof(x) for x in jax.tree.leaves(state)]


@every_pair
def test_state_structure_is_stable(form, circuit):
  """The state after each step has the tree, shapes, dtypes and weak types of
  the state from init (what jit keys its compiled update on): jax.lax.scan
  takes it, and a checkpoint of one step restores into another's."""
  p = pair(form, circuit)
  state = p.state
  for grads, params in (*STEPS, STEPS[0]):
    _, state = p.update(grads, state, params)
    assert types(state) == types(p.state)

  def body(state, grads):
    return p.tx.update(grads, state, PARAMS)[1], None

  stacked = jax.tree.map(lambda *g: jnp.stack(g), *(grads for grads, _ in STEPS))
  scanned, _ = jax.eval_shape(lambda s: jax.lax.scan(body, s, stacked), p.state)
  assert types(scanned) == types(p.state)


@every_pair
def test_finite_inputs_give_finite_updates(form, circuit):
  """Parameters and gradients from subnormal to float32's largest give finite
  updates, two steps, compiled and eager."""
  p = pair(form, circuit)
  state, eager_state = p.state, p.state
  for _ in range(2):
    jitted, state = p.update(EXTREME_GRADS, state, EXTREME_PARAMS)
    eager, eager_state = p.tx.update(EXTREME_GRADS, eager_state, EXTREME_PARAMS)
    for updates in (jitted, eager):
      for name in FLOATS:
        assert np.all(np.isfinite(np.asarray(updates[name], np.float32))), (name, updates[name])


def _circuit_function(angles):
  return angles


# The wrong values of each form's arguments, and what each raises when it is built.
EVERY_FORM = [
  ({"quantum_weight": float("nan")}, ValueError, r"quantum_weight must be finite"),
  ({"quantum_weight": float("inf")}, ValueError, r"quantum_weight must be finite"),
  ({"quantum_weight": "big"}, TypeError, r"quantum_weight must be a finite float or a schedule"),
  ({"key": "seed"}, TypeError, r"key must be an int seed or a PRNG key"),
  ({"circuit": 3}, TypeError, r"Circuit\(n_qubits=3\)"),
  ({"circuit": _circuit_function}, TypeError, r"Circuit\(custom=fn\)"),
  (
    {"n_qubits": 3, "entanglement": "ring"},
    TypeError,
    r"circuit=qsgd_optax\.Circuit\(n_qubits=3, entanglement='ring'\)",
  ),
  ({"entanglment": "ring"}, TypeError, r"unexpected keyword argument 'entanglment'"),
]
ADAM_ARGUMENTS = [
  ({"b1": 1.5}, ValueError, r"b1 must be a finite float in \[0, 1\)"),
  ({"b1": 1.0}, ValueError, r"b1 must be a finite float in \[0, 1\)"),
  ({"b1": "0.9x"}, TypeError, r"b1 must be a finite float in \[0, 1\) or a schedule"),
  ({"b2": -0.1}, ValueError, r"b2 must be a finite float in \[0, 1\)"),
  ({"eps": -1.0}, ValueError, r"eps must be a finite float >= 0"),
  ({"eps_root": float("inf")}, ValueError, r"eps_root must be a finite float >= 0"),
  ({"placement": "moments"}, ValueError, r"placement must be one of \('gradient', 'update', "),
]
QSGD_ARGUMENTS = [
  ({"weight_decay": -1.0}, ValueError, r"weight_decay must be a finite float >= 0"),
  ({"learning_rate": float("nan")}, ValueError, r"learning_rate must be a finite float"),
]
DIRECTION_ARGUMENTS = [
  ({"quantum_weight": w}, ValueError, r"quantum_weight must lie in the open interval \(-1, 1\)")
  for w in (1.0, -1.0, 1.5)
]
BAD_ARGUMENTS = {
  "qsgd-gradient": EVERY_FORM + ADAM_ARGUMENTS + QSGD_ARGUMENTS,
  "qsgd-update": EVERY_FORM + ADAM_ARGUMENTS + QSGD_ARGUMENTS,
  "qsgd-direction": EVERY_FORM + ADAM_ARGUMENTS + QSGD_ARGUMENTS + DIRECTION_ARGUMENTS,
  "scale_by_qsgd": EVERY_FORM + ADAM_ARGUMENTS,
  "superpose": EVERY_FORM,
}


@every_pair
def test_bad_arguments_fail_when_built(form, circuit):
  """Each wrong value raises where the optimizer is built, naming the argument;
  under optax.inject_hyperparams the circuit's keywords of 0.4 do not bind either."""
  for overrides, error, match in BAD_ARGUMENTS[form]:
    with pytest.raises(error, match=match):
      FORMS[form].build(CIRCUITS[circuit], **overrides)
  with pytest.raises(TypeError, match="n_qubits"):
    optax.inject_hyperparams(FORMS[form].factory)(**FORMS[form].kwargs, n_qubits=3)
