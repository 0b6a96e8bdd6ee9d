"""Model libraries: versioned sets of capacity-planning cases (seed 000) and pre-trained models.

The pieces, each in the module named after what it owns:

- :mod:`.records` the typed records (manifest, case, library) and :mod:`.schema` the JSON Schemas
  they come from (package data, the published contract; docs/library-format.md explains them);
- :mod:`.archive` reading a library (``.tar.gz``, directory or one JSON document) safely and within
  size limits, and :mod:`.verify` checking every case and model;
- :mod:`.recommend` the nearest-case recommender and its leave-one-out evaluation, and
  :mod:`.forecast_inputs` the mapping from forecasts to its inputs;
- :mod:`.sources` fetching from a built-in name, a URL, S3 or a ConfigMap; :mod:`.store` verified
  versions in the artifact store and the one pointer naming the active version; :mod:`.job` the
  ModelLibrary fetch Job that ties them together;
- :mod:`.builtin` the libraries shipped with the runtime, and :mod:`.cli` / :mod:`.command` the
  ``foresight library`` and ``foresight recommend`` commands.

Importing this package imports nothing heavy; the submodules need numpy and jsonschema.
"""
