"""The web pages (HTML) of Tiaojie. ``api.web.routes.mount(app)`` adds the pages and the
static files they use (served by the app itself, no CDN)."""
