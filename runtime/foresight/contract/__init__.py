"""The operator-runtime contract: everything the operator and the runtime pods must agree on.

The operator never imports the runtime; it creates pods that run the runtime image, and the two
meet only here. Torch-free and dependent on :mod:`foresight.api` alone, so the operator image
imports it:

- :mod:`.env`: the environment variable names a runtime pod is given, and their defaults;
- :mod:`.s3`: the S3 environment of a pod, built from a store reference and read back;
- :mod:`.termination`: the termination message, the only channel from a finished pod back to the
  operator (size limit, writing, parsing);
- :mod:`.forecast`, :mod:`.training`, :mod:`.modelversion`: each kind's run result (the
  termination message's schema), exit codes, ports and paths;
- :mod:`.classifier`: the classifier service's config file and the Secrets it reads from env;
- :mod:`.experiment`: an ABExperiment's traffic split, written by the operator into a ConfigMap
  the classifier's pods read;
- :mod:`.train_config`: a TrainingJob spec rendered as the config ``foresight train`` reads;
- :mod:`.trained_model`: the ModelVersion a trained model becomes (the operator's and ``foresight run``'s);
- :mod:`.pushgateway`: where a Pushgateway keeps a group (its URL), for pushing and deleting it.

A pydantic model here is written by the runtime and read by the operator through the same class,
so a field renamed on one side is renamed on the other.
"""
