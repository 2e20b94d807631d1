"""The API's documentation pages, with every asset served from the package (no CDN).

FastAPI's own ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from a CDN, so they are blank
without internet. These pages use the same HTML with the scripts, stylesheet and icon shipped
in ``tianping/server/docs_static`` (see its README for versions and licences). ``/`` sends people
to the dashboard.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tianping.errors import NotFound

PREFIX = "/docs/static"
#: The files served, with their media types.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}


def install(app: FastAPI) -> None:
    """Add ``/``, ``/docs``, ``/redoc`` and their assets to an app built with
    ``docs_url=None, redoc_url=None``."""
    title = f"{app.title} API"

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/dashboard/", status_code=307)

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=title,
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon-32x32.png",
        )  # fmt: skip

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url, title=title,
            redoc_js_url=f"{PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{PREFIX}/favicon-32x32.png", with_google_fonts=False,
        )  # fmt: skip

    @app.get(f"{PREFIX}/{{name}}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in ASSETS:
            raise NotFound(f"no file {name!r}")
        data = resources.files("tianping.server").joinpath("docs_static", name).read_bytes()
        return Response(data, media_type=ASSETS[name], headers={"Cache-Control": "max-age=86400"})
