"""Golden model: the NumPy reference that defines DPFM arithmetic bit for bit."""
