"""Reports on a finished search: generalisation matrices, the Pareto front and the composition response."""
