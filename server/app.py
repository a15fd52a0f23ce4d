"""make_app(settings, services) -> the Tornado application and its route table."""

from __future__ import annotations

import tornado.web
from tornado.routing import Rule, URLSpec

from .config import Settings
from .handlers import auth, devices, events, files, health, images, openapi, seed, tus, videos, web
from .handlers import metrics as metrics_handler
from .handlers.base import NotFoundHandler, log_request
from .handlers.cors import CorsPolicy, preflight_rules
from .metrics import log_function
from .services import Services
from .views import API

ID = r"([^/]+)"


def make_app(settings: Settings, services: Services) -> tornado.web.Application:
    blobs = {"services": services, "root": settings.blobs_dir}
    thumbs = {"services": services, "root": settings.thumbs_dir}
    common = {"services": services}
    routes: list[URLSpec] = [
        tornado.web.url(f"{API}/health", health.HealthHandler, common),
        tornado.web.url(f"{API}/openapi.json", openapi.OpenApiHandler, common),
        tornado.web.url(f"{API}/auth/methods", auth.MethodsHandler, common),
        tornado.web.url(f"{API}/auth/pair", auth.PairHandler, common),
        tornado.web.url(f"{API}/auth/pairing-codes", auth.PairingCodesHandler, common),
        tornado.web.url(f"{API}/auth/wechat", auth.WeChatLoginHandler, common),
        tornado.web.url(f"{API}/devices", devices.DevicesHandler, common),
        tornado.web.url(f"{API}/devices/{ID}", devices.DeviceHandler, common),
        tornado.web.url(f"{API}/images", images.ImagesHandler, common),
        tornado.web.url(f"{API}/images/check", images.CheckHandler, common),
        tornado.web.url(f"{API}/images/{ID}", images.ImageHandler, common),
        tornado.web.url(f"{API}/images/{ID}/original", files.OriginalHandler, blobs),
        tornado.web.url(f"{API}/images/{ID}/thumbnail", files.ThumbnailHandler, thumbs),
        tornado.web.url(f"{API}/images/{ID}/video", videos.VideoHandler, thumbs),
        tornado.web.url(f"{API}/timeline", images.TimelineHandler, common),
        tornado.web.url(f"{API}/trash", images.TrashHandler, common),
        tornado.web.url(f"{API}/trash/{ID}", images.TrashItemHandler, common),
        tornado.web.url(f"{API}/trash/{ID}/restore", images.RestoreHandler, common),
        tornado.web.url(f"{API}/service/image", seed.SeedImageHandler, blobs),
        tornado.web.url(f"{API}/events", events.EventsHandler, common),
        tornado.web.url(f"{API}/uploads/?", tus.UploadsHandler, common),
        tornado.web.url(f"{API}/uploads/{ID}", tus.UploadHandler, common),
    ]
    metrics = metrics_handler.build(settings, services, routes)  # None unless --metrics
    routes += metrics_handler.routes(settings, metrics)
    if metrics is not None:
        metrics.name_routes(web.ROUTE_NAMES)
    # Last: the web app answers every path outside /api/ that nothing above took.
    routes += web.routes(web.WebApp(settings.web))
    cors = CorsPolicy(settings.cors_origins)
    # Preflights from allowed origins are answered before any route (and its auth).
    rules: list[Rule] = [*preflight_rules(cors), *routes]
    return tornado.web.Application(
        rules,
        default_handler_class=NotFoundHandler,
        default_handler_args=common,
        compress_response=False,
        cors=cors,
        log_function=log_function(log_request, metrics),
        metrics=metrics,
        websocket_ping_interval=settings.ping_interval,
        # Tornado closes a socket whose pong has not come by the next ping (the most it allows).
        websocket_ping_timeout=settings.ping_interval,
        websocket_max_message_size=64 * 1024,
    )
