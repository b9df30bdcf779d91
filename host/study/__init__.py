"""The learning-quality study (`dpfm study`): a grid of task x K x selection rule x lr rule x seed, tuned from
the training split only, run as Dask tasks, reported as medians and spread (docs/STUDY.md)."""
