"""Pure statistics over numpy arrays: one module per statistic family."""
