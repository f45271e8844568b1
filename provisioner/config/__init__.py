"""The environment model and its loading from YAML."""

from provisioner.config.load import load_environment, parse
from provisioner.config.model import Environment

__all__ = ["Environment", "load_environment", "parse"]
