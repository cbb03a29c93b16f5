"""One module per drift statistic, each declaring ``STATISTIC`` (``exporter.stats.statistic``).

``MODULES`` is the registry's only list: a new statistic is its module here plus its name
below. The order is part of the output: it is the order the config reference lists the
statistics in (after each kind's default) and, within the numerical-only, shared and
categorical-only groups, the order of their gauge families in the exposition.
"""

MODULES: tuple[str, ...] = ("ks", "psi", "wasserstein", "jensen_shannon", "chi2")
