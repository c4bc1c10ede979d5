import pytest

from motus_policy.evaluation.stats import format_rate, wilson_interval


def test_wilson_matches_known_values():
    # 45/50: Wilson 95 % interval 0.7864-0.9565 (standard tables / statsmodels proportion_confint)
    lo, hi = wilson_interval(45, 50)
    assert lo == pytest.approx(0.7864, abs=1e-4)
    assert hi == pytest.approx(0.9565, abs=1e-4)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)


def test_format_and_errors():
    assert format_rate(45, 50).startswith("45/50 = 90.0 %")
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        wilson_interval(5, 3)


def test_wilson_matches_tables_at_the_edges():
    lo, hi = wilson_interval(50, 50)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.9287, abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-4)
