"""Benchmarks and studies (`dpfm bench TARGET`): each module has `add_arguments(parser)` and `run(args)`."""
