"""The one pydantic base of the experiment package's records.

Everything the analysis produces ends up in an ABExperiment's status (evidence, decision history,
bandit state), so every record serialises to camelCase JSON like the API models do
(``model_dump(mode="json", by_alias=True)``) and reads back from it. Records are frozen: the
decision policy is a pure function and returns new state instead of editing the old one.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Record(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=True,
    )
