"""When the runner stops measuring (:func:`leakcheck.policy.next_target`), both ways."""

from __future__ import annotations

from conftest import make_evidence

from leakcheck import Verdict
from leakcheck.config import Settings
from leakcheck.policy import next_target
from leakcheck.probes import make_probes
from leakcheck.verdict import Judgement

PROBES = make_probes(["files", "rss"])
SETTINGS = Settings()


def _judged(files: Verdict, rss: Verdict) -> list[Judgement]:
    return [Judgement(files, make_evidence(2.0), ""), Judgement(rss, make_evidence(0.0), "")]


def test_a_handle_leak_confirmed_over_two_passes_stops_though_another_measure_is_unsure() -> None:
    # Files left on disk, 2 per call over 200 iterations, rss unclear: the test fails whatever rss does.
    done = 2 * SETTINGS.iterations
    assert next_target(PROBES, _judged(Verdict.UNBOUNDED, Verdict.INCONCLUSIVE), done, 1.0, 0, SETTINGS) is None


def test_a_handle_leak_seen_in_one_pass_is_confirmed_first() -> None:
    done = SETTINGS.iterations
    more = next_target(PROBES, _judged(Verdict.UNBOUNDED, Verdict.INCONCLUSIVE), done, 0.5, 0, SETTINGS)
    assert more == 2 * SETTINGS.iterations


def test_an_unsure_measure_beside_bounded_handles_is_measured_longer() -> None:
    done = 2 * SETTINGS.iterations
    more = next_target(PROBES, _judged(Verdict.BOUNDED, Verdict.INCONCLUSIVE), done, 1.0, 0, SETTINGS)
    assert more == 3 * SETTINGS.iterations
