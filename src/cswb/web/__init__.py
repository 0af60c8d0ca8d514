"""Server-rendered web pages of cswb (Jinja2 templates, one stylesheet, no script)."""
