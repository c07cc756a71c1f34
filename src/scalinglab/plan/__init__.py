"""Planning runs: the frozen RunSpec and (later) the grids of a study."""
