"""dask-gateway-server plugin: options by group, quota-aware backend (its own issue)."""
