"""Amaranth gateware for the DPFM training pipeline and its host link."""
