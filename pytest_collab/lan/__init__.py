"""LAN profiles and what is known of their devices: schema, inventories, discovery, facts."""
