"""Backward compatibility of saved models: directories written by an earlier ``save()`` load and predict.

Each ``tests/fixtures/saved_models/format<N>/`` holds a tiny LSTM and an ``auto`` model (with a
trained LSTM inside) exactly as ``save()`` wrote them, the history they predict from and the
forecast they gave then (NeuralForecast keeps old checkpoints as fixtures the same way). Today's
code must load every one of them and give the same forecast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from foresight.forecast.auto import SAVE_FORMAT, AutoModel
from foresight.forecast.models import load_model
from foresight.forecast.models.neural import NeuralModel

from tests.fixtures.saved_models.make_saved_models import HORIZON, panel_from_json

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "saved_models"
FORMATS = sorted(p for p in FIXTURES.glob("format*") if p.is_dir())
WHAT_TO_DO = (
    "a model directory written by an earlier save() (tests/fixtures/saved_models/{fixture}) {problem}. "
    "Users' PVCs and buckets hold such directories. If you did not mean to change the saved format, "
    "fix the code so it reads them again. If you changed it on purpose: bump the format number "
    "(the neural models' config.json 'format' and foresight.forecast.auto.SAVE_FORMAT), keep loading "
    "the old format (or refuse it with an error that says to retrain) and write the new fixtures with "
    "`python tests/fixtures/saved_models/make_saved_models.py`; keep this fixture while the old format "
    "is still read."
)


def _expected(fixture: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((fixture / "expected.json").read_text())
    return doc


def test_todays_format_has_a_fixture() -> None:
    assert FIXTURES / f"format{SAVE_FORMAT}" in FORMATS, (
        f"no fixture for today's save format {SAVE_FORMAT}: run "
        "`python tests/fixtures/saved_models/make_saved_models.py` and commit what it writes"
    )


@pytest.mark.parametrize("fixture", FORMATS, ids=lambda p: p.name)
@pytest.mark.parametrize("name", ["lstm", "auto"])
def test_a_saved_model_loads_and_predicts_as_it_did(fixture: Path, name: str) -> None:
    where = f"{fixture.name}/{name}"
    try:
        model = load_model(fixture / name)
    except Exception as exc:  # any failure to read an old artifact is the regression this test is for
        pytest.fail(WHAT_TO_DO.format(fixture=where, problem=f"no longer loads: {type(exc).__name__}: {exc}"))
    assert isinstance(model, AutoModel if name == "auto" else NeuralModel), type(model)
    if isinstance(model, AutoModel):  # the trained network inside the auto model came back too
        assert isinstance(model._fitted.get("lstm"), NeuralModel), WHAT_TO_DO.format(
            fixture=where, problem="loads without its trained LSTM"
        )
    panel = panel_from_json(json.loads((fixture / "panel.json").read_text()))
    expected = _expected(fixture)[name]
    fc = model.predict(panel, HORIZON)
    assert list(fc.model) == expected["model"], WHAT_TO_DO.format(
        fixture=where, problem=f"picks other models per series now: {list(fc.model)} != {expected['model']}"
    )
    for part in ("point", "lower", "upper"):
        got, want = getattr(fc, part), np.array(expected[part])
        # Loose enough for another torch build or a GPU, far tighter than a changed model would be.
        assert np.allclose(got, want, rtol=1e-4, atol=1e-4), WHAT_TO_DO.format(
            fixture=where,
            problem=f"forecasts differently now ({part}: max |diff| {np.abs(got - want).max():.3g})",
        )
