import pytest

from qsgd_optax import draw


def test_draw_shows_every_gate():
  text = draw(3, "ring", layers=2, theta=[0.5, 0.25, 0.0])
  lines = text.splitlines()
  assert len(lines) == 3
  assert all(line.count("RY") == 2 and line.count("RZ") == 2 for line in lines)
  assert "RY(1.57)" in lines[0] and "RY(0.79)" in lines[1]
  assert text.count("X") == 6  # 3 CNOT targets per layer.


def test_draw_without_entanglement_has_no_cnot():
  assert "X" not in draw(2, None, decimals=None)


def test_draw_rejects_bad_pattern():
  with pytest.raises(ValueError, match="entanglement"):
    draw(2, "star")
