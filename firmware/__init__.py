"""pitap: tap-to-pay terminal firmware. The application; never drives a chip directly."""

__version__ = "0.1.0"
