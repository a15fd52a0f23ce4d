"""Tubei (图备): self-hosted photo backup for WeChat users."""

__version__ = "0.1.0"
