"""HTTP and WebSocket handlers: HTTP in, calls on the services, HTTP out."""
