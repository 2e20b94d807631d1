"""The JSON API: ``create_app(settings)`` builds it; each domain contributes one router."""
