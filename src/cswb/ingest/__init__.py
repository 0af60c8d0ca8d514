"""Getting calls for service from files and portals into the canonical call record."""
