"""Board targets: bitstream builds, reports and programming."""
