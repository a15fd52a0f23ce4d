"""make_app(settings, services) -> the Tornado application and its route table."""

from __future__ import annotations

import tornado.web
from tornado.routing import URLSpec

from .config import Settings
from .handlers import auth, events, files, health, images, seed, tus
from .handlers.base import NotFoundHandler
from .services import Services
from .views import API

ID = r"([^/]+)"


def make_app(settings: Settings, services: Services) -> tornado.web.Application:
    blobs = {"services": services, "root": settings.blobs_dir}
    thumbs = {"services": services, "root": settings.thumbs_dir}
    common = {"services": services}
    routes: list[URLSpec] = [
        tornado.web.url(f"{API}/health", health.HealthHandler, common),
        tornado.web.url(f"{API}/auth/pair", auth.PairHandler, common),
        tornado.web.url(f"{API}/images", images.ImagesHandler, common),
        tornado.web.url(f"{API}/images/check", images.CheckHandler, common),
        tornado.web.url(f"{API}/images/{ID}", images.ImageHandler, common),
        tornado.web.url(f"{API}/images/{ID}/original", files.OriginalHandler, blobs),
        tornado.web.url(f"{API}/images/{ID}/thumbnail", files.ThumbnailHandler, thumbs),
        tornado.web.url(f"{API}/trash", images.TrashHandler, common),
        tornado.web.url(f"{API}/trash/{ID}", images.TrashItemHandler, common),
        tornado.web.url(f"{API}/trash/{ID}/restore", images.RestoreHandler, common),
        tornado.web.url(f"{API}/service/image", seed.SeedImageHandler, blobs),
        tornado.web.url(f"{API}/events", events.EventsHandler, common),
        tornado.web.url(f"{API}/uploads/?", tus.UploadsHandler, common),
        tornado.web.url(f"{API}/uploads/{ID}", tus.UploadHandler, common),
    ]
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=common,
        compress_response=False,
        xheaders=False,
        websocket_ping_interval=settings.ping_interval,
        websocket_ping_timeout=settings.ping_interval * 3,
        websocket_max_message_size=64 * 1024,
    )
