"""cocotb testbenches, simulation runners and the co-simulation harness."""
