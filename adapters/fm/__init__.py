"""FM adapter: UECP codec (uecp), transmitter device model (device), adapter (adapter)."""
