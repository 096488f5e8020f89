"""Loading NIST StRD nonlinear regression files: the 20 shipped problems, the safe formula parser, bad files."""

import jax.numpy as jnp
import numpy as np
import pytest

import mmljax as mj
from mmljax.strd_nls import STRD_NLS_NAMES, load_strd_nls, parse_model, parse_strd_nls


def _text(name):
    import importlib.resources

    return importlib.resources.files("mmljax").joinpath("datasets", "strd_nls", f"{name}.dat").read_text()


def test_all_twenty_load_with_their_certified_values():
    assert len(STRD_NLS_NAMES) == 20
    for name in STRD_NLS_NAMES:
        pr = mj.data.load_strd_nls(name)
        n, p = pr.n_observations, pr.n_params
        assert pr.y.shape == (n,) and pr.x.shape[0] == n
        assert pr.start1.shape == pr.start2.shape == pr.certified_params.shape == (p,)
        assert np.all(pr.certified_standard_errors > 0) and pr.certified_rss > 0
        assert pr.model(jnp.asarray(pr.certified_params), pr.x).shape == (n,)
    misra = load_strd_nls("misra1a.dat")  # case-insensitive, with or without the extension
    assert misra.name == "Misra1a" and misra.n_observations == 14 and misra.x.shape == (14,)
    np.testing.assert_array_equal(misra.start1, [500.0, 1e-4])
    np.testing.assert_array_equal(misra.certified_params, [2.3894212918e02, 5.5015643181e-04])
    assert misra.certified_rss == 1.2455138894e-01 and misra.certified_residual_sd == 1.0187876330e-01
    assert misra.dof == 12 and misra.difficulty == "lower"


def test_nelson_response_is_log_y_and_has_two_predictors():
    pr = load_strd_nls("Nelson")
    assert pr.x.shape == (128, 2) and pr.response == "log(y)"
    np.testing.assert_allclose(pr.y, np.log(pr.y_raw), rtol=0)
    r = pr.residuals(jnp.asarray(pr.certified_params), pr.args)
    np.testing.assert_allclose(float(jnp.sum(r**2)), pr.certified_rss, rtol=1e-8)


@pytest.mark.parametrize("name", STRD_NLS_NAMES)
def test_parsed_formula_agrees_with_the_hand_written_model(name):
    pr = load_strd_nls(name)
    parsed = parse_model(pr.formula, pr.n_params, 1 if pr.x.ndim == 1 else pr.x.shape[1])
    for b in (pr.certified_params, pr.start1, pr.start2):
        b = jnp.asarray(b)
        np.testing.assert_allclose(np.asarray(parsed(b, pr.x)), np.asarray(pr.model(b, pr.x)), rtol=1e-13, atol=0)
    if name != "Lanczos1":  # the certified RSS is reproduced at the certified parameters
        r = pr.residuals(jnp.asarray(pr.certified_params), pr.args)
        np.testing.assert_allclose(float(jnp.sum(r**2)), pr.certified_rss, rtol=1e-7)


_ROSZMAN_LIKE = """NIST/ITL StRD
Dataset Name:  Synthetic1        (Synthetic1.dat)

Model:         Miscellaneous Class
               4 Parameters (b1 to b4)

               pi = 3.141592653589793238462643383279E0

               y =  b1 - b2*x - arctan[b3/(x-b4)]/pi  +  e

          Starting values                  Certified Values

        Start 1     Start 2           Parameter     Standard Deviation
  b1 =      0.1         0.2          2.0E-01     1.0E-02
  b2 =     -0.00001    -0.000005    -6.0E-06     1.0E-06
  b3 =   1000        1200            1.2E+03     1.0E+01
  b4 =   -100        -150           -1.8E+02     1.0E+00

Residual Sum of Squares:                    1.0E-03
Residual Standard Deviation:                1.0E-02
Degrees of Freedom:                                 2
Number of Observations:                             6

Data:   y           x
      0.252429    -4868.68
      0.252141    -4868.09
      0.251809    -4867.41
      0.297989    -3375.19
      0.296257    -3373.14
      0.295319    -3372.03
"""


def test_a_file_not_shipped_gets_its_model_from_the_formula(tmp_path):
    path = tmp_path / "Synthetic1.dat"
    path.write_text(_ROSZMAN_LIKE)
    pr = load_strd_nls(str(path))
    assert pr.name == "Synthetic1" and pr.n_params == 4 and pr.n_observations == 6
    b = jnp.asarray(pr.certified_params)
    x = pr.x
    want = 0.2 - (-6e-6) * x - np.arctan(1200.0 / (x - (-180.0))) / np.pi
    np.testing.assert_allclose(np.asarray(pr.model(b, x)), want, rtol=1e-14)
    # and it can be fitted
    res = mj.solvers.nonlinear_least_squares(pr.residuals, jnp.asarray(pr.start2), pr.args)
    assert bool(res.converged)


@pytest.mark.parametrize(
    "formula,match",
    [
        ("__import__('os').system('echo hi')", "not allowed"),
        ("b1.real", "Attribute is not allowed"),
        ("b1 * open(x)", "function 'open' is not allowed"),
        ("b1 if x else b2", "IfExp is not allowed"),
        ("b1 * z", "unknown name 'z'"),
        ("b1 * b3", "unknown name 'b3'"),
        ("b1 // x", "FloorDiv is not allowed"),
        ("b1 * exp(x, 2)", "one argument each"),
        ("b1 * 'x'", "constant 'x' is not allowed"),
        ("b1 * (x", "cannot parse"),
    ],
)
def test_the_formula_parser_refuses_anything_outside_its_whitelist(formula, match):
    with pytest.raises(ValueError, match=match):
        parse_model(formula, 2)


def test_parser_functions_constants_and_predictors():
    m = parse_model("b1*exp[-b2*x1] + sqrt(x2)*cos(pi*b1) - log(b2) + sin(x1)**2 - +1.5e0", 2, 2)
    b = jnp.array([0.5, 2.0])
    x = jnp.array([[0.1, 4.0], [0.2, 9.0]])
    want = (
        0.5 * np.exp(-2.0 * x[:, 0]) + np.sqrt(x[:, 1]) * np.cos(np.pi * 0.5) - np.log(2.0) + np.sin(x[:, 0]) ** 2 - 1.5
    )
    np.testing.assert_allclose(np.asarray(m(b, x)), np.asarray(want), rtol=1e-14)


def test_truncated_file_is_an_error_naming_file_and_line():
    lines = _text("Misra1a").splitlines()
    truncated = "\n".join(lines[:65])
    with pytest.raises(ValueError, match=r"Misra1a\.dat: line 65: the file is truncated.*5 data row\(s\).*14"):
        parse_strd_nls(truncated, source="Misra1a.dat")


def test_malformed_rows_and_tables_name_the_line():
    lines = _text("Misra1a").splitlines()
    bad = list(lines)
    bad[62] = "   10.07E0      oops"
    with pytest.raises(ValueError, match=r"Misra1a\.dat: line 63: non-numeric value"):
        parse_strd_nls("\n".join(bad), source="Misra1a.dat")
    bad = list(lines)
    bad[62] = "   10.07E0      77.6E0  3.0"
    with pytest.raises(ValueError, match=r"line 63: 3 value\(s\) in a data row, expected 2"):
        parse_strd_nls("\n".join(bad), source="Misra1a.dat")
    bad = list(lines)
    i = next(k for k, ln in enumerate(lines) if ln.strip().startswith("b2 ="))
    bad[i] = "  b2 =   1.0E-04   2.0E-04   5.5015643181E-04"
    with pytest.raises(ValueError, match=rf"line {i + 1}: expected 'b2 = start1 start2 certified std.dev'"):
        parse_strd_nls("\n".join(bad), source="Misra1a.dat")
    with pytest.raises(ValueError, match="not a NIST StRD nonlinear file"):
        parse_strd_nls("hello\nworld", source="x.dat")


def test_unknown_names_and_missing_paths():
    with pytest.raises(ValueError, match="unknown problem 'Misra9'.*Misra1a"):
        load_strd_nls("Misra9")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_strd_nls("/nonexistent/BoxBOD.dat")


def test_scores_are_capped_lres():
    pr = load_strd_nls("Misra1a")

    class Fake:
        params = pr.certified_params * (1 + 1e-6)
        standard_errors = pr.certified_standard_errors
        residual_sd = pr.certified_residual_sd

    sc = pr.scores(Fake())
    assert 5.9 < sc["params"] < 6.1 and sc["standard_errors"] == 11.0 and sc["residual_sd"] == 11.0
