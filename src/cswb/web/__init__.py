"""Server-rendered web pages of cswb: the dashboard, the "what was loaded" page, the report."""
