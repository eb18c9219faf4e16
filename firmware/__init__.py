"""pitap: tap-to-pay terminal firmware. The application; never drives a chip directly."""

__version__ = "0.1.0"

# The firmware's modules and packages (ARCHITECTURE.md, "Rooms"); subpackages declare their own.
__all__ = [
    "__version__",
    "cli",
    "commands",
    "config",
    "emv",
    "errors",
    "feedback",
    "host",
    "journal",
    "private_files",
    "provision",
    "receipt",
    "recovery",
    "service",
    "terminal",
    "void",
]
