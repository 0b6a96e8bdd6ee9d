"""``make run``'s data holds enough real crossings in its backtest window for the alert rule to be
chosen by evidence (issue 16: the demo shows the chosen rule's backtested precision and recall),
and its hidden next day holds at least one."""

from __future__ import annotations

import numpy as np
from foresight.forecast.alerting import MIN_EVENTS
from foresight.forecast.backtest import backtest
from foresight.forecast.models import get_model
from foresight.forecast.synthetic import make_storage_dataset
from foresight.forecast.uncertainty import learn
from foresight.run.demo import CROSS_WINDOW, HISTORY_DAYS, STEP, demo_spec


def test_the_demo_backtest_holds_enough_crossings_to_choose_the_alert_rule_by_evidence() -> None:
    spec = demo_spec(artifacts_uri="file:///tmp/unused")
    data = make_storage_dataset(
        n_series=48, days=HISTORY_DAYS + 1, step=STEP, seed=0, cross_window=CROSS_WINDOW
    )
    day = 86400 // STEP
    history = data.panel.head(data.panel.n_steps - day)
    bt = backtest(history, lambda: get_model("seasonal_naive"), day, spec.model.backtest_folds)
    alert = learn(spec, history, bt, day).alert
    assert alert is not None
    assert alert.events >= MIN_EVENTS, alert.reason
    assert alert.score is not None and alert.score.precision is not None and alert.score.recall is not None
    # The hidden next day: at least one quota below 95% at the end of the history crosses within it.
    assert history.capacity is not None
    threshold = history.capacity * 0.95
    below = history.values[:, -1] < threshold
    crosses = (data.panel.values[:, -day:] >= threshold[:, None]).any(axis=1)
    assert np.sum(below & crosses) >= 1
