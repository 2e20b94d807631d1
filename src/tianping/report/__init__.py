"""Self-contained HTML reports (Jinja2 templates, inline CSS and SVG; nothing fetched)."""
