"""The statistics and routing core of ABExperiment: pure, torch-free, I/O-free.

The operator's ABExperiment controller runs the analysis in the operator process (as Argo
Rollouts runs its AnalysisRuns); the classifier's serving pods route requests. Both import from
here; nothing here talks to Kubernetes, Prometheus or the network. One module per concern:

- :mod:`.counters`: the metric contract: the series the classifier exports per ``variant`` and
  the PromQL that reads them back as aggregates;
- :mod:`.aggregates`: per-variant sufficient statistics (successes / trials; count, sum, sum of
  squares) and their n, mean and variance;
- :mod:`.hypothesis`: Welch's t-test, the two-proportion z-test, Cohen's d and h, confidence
  intervals, one-sided limit and ratio tests (non-inferiority, rollback rules), Holm–Bonferroni;
- :mod:`.sequential`: the always-valid mSPRT (p-values and confidence sequences valid at every look);
- :mod:`.sample_size`: required samples for a minimum detectable effect, and the ETA;
- :mod:`.srm`: the sample-ratio-mismatch check;
- :mod:`.bandits`: Thompson sampling, UCB1 and epsilon-greedy with an exploration floor and
  a JSON state;
- :mod:`.routing`: sticky weighted routing by rendezvous hashing (stdlib only: the serving hot path);
- :mod:`.config`, :mod:`.state`, :mod:`.decision`, :mod:`.policy`: the experiment's settings,
  its memory between analyses, the decision record, and ``analyse()`` which ties them together.

Import from the modules (``from foresight.experiment.routing import VariantRouter``): this package
file imports nothing, so the serving pods load the router without scipy.
"""
