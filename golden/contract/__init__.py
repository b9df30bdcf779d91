"""The contract every layer shares: errors, number formats, the network and weight-id layout, the toper
organisation, the wire format, the register map and atomic output files. It imports nothing else of dpfm."""
