"""Device leases: which run holds which device, for one controller or several."""
