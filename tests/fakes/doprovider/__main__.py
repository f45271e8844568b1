"""Entry point: `python -m doprovider` with tests/fakes on PYTHONPATH (see the wrapper)."""

from __future__ import annotations

from .server import serve
from .servicer import ProviderServicer


def main() -> None:
    """Serve the provider over go-plugin until Terraform shuts it down."""
    serve(ProviderServicer())


if __name__ == "__main__":
    main()
