"""The ingest baseline: the first Tubei, a Django view that kept uploads as `<md5>.jpg`.

It read the uploaded file (Django's multipart parser spools large ones to a temporary
file), took its MD5 and wrote the bytes under that name: no second hash, no metadata,
no catalog, no fsync. Served as it was, by Django's own threaded server
(`runserver --noreload`). Run as a process: `python scripts/bench_seed.py --port N --dir DIR`.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import django
from django.conf import settings
from django.core.management import call_command
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

FOLDER = Path(".")


@csrf_exempt
def upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST" or not request.FILES:
        return JsonResponse({"result_code": -101, "message": "no file"}, status=400)
    f = next(iter(request.FILES.values()))
    data = f.read()
    md5 = hashlib.md5(data).hexdigest()
    with open(FOLDER / f"{md5}.jpg", "wb") as out:
        out.write(data)
    return JsonResponse({"result_code": 0, "message": "ok", "data": {"md5": md5}})


def health(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [path("upload", upload), path("health", health)]


def main(argv: list[str]) -> int:
    global FOLDER
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    FOLDER = args.dir
    FOLDER.mkdir(parents=True, exist_ok=True)
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="bench-only",
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATA_UPLOAD_MAX_MEMORY_SIZE=None,
        LOGGING_CONFIG=None,
    )
    django.setup()
    call_command("runserver", f"127.0.0.1:{args.port}", use_reloader=False, skip_checks=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
