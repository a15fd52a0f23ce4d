"""Loaded by schemathesis (the `hooks` of tests/test_schemathesis.py's config).

tus data is `application/offset+octet-stream`: raw bytes, sent as
`application/octet-stream` bodies are.
"""

from __future__ import annotations

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
