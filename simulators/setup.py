"""Packaging for pitap-sim: the simulators and test keys, for development and tests only.

A distribution of its own so that the terminal's wheel (../setup.py) cannot carry them. Installed
next to pitap by `make install` (`pip install -e . -e simulators`); never onto a terminal.
"""

from setuptools import setup

SUBPACKAGES = ("wallet", "pn532", "host", "upi")

setup(
    name="pitap-sim",
    version="0.1.0",
    description="Simulated phones, PN532, SPI panel, GPIO, host and UPI PSP for developing pitap",
    license="Apache-2.0",
    python_requires=">=3.11",
    # This directory is the `simulators` package itself (setup.py is left out of it).
    package_dir={"simulators": "."},
    packages=["simulators", *(f"simulators.{p}" for p in SUBPACKAGES)],
    package_data={"simulators": ["data/*.toml"], "simulators.wallet": ["profiles.toml"]},
    install_requires=["pitap==0.1.0", "aiohttp>=3.9"],  # aiohttp: the PSP simulator
)
