"""Host side: protocol, device driver and the dpfm CLI."""
