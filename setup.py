"""Packaging for pitap: tap-to-pay terminal firmware for the Raspberry Pi."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


# What config/ ships: data files by kind, never whatever else lies there (a development run's
# state, e.g. config/var/ with a test host's TLS keys, beside a configuration it was started with).
SHIPPED_CONFIG = ("*.toml", "capk/*.txt", "dialects/*.toml", "systemd/*")


def shipped_config() -> list[tuple[str, list[str]]]:
    """The config/ data files, installed under share/pitap/config for non-editable installs."""
    out: dict[str, list[str]] = {}
    found = {p for pattern in SHIPPED_CONFIG for p in (HERE / "config").glob(pattern)}
    for path in sorted(found):
        if path.is_file():
            rel = path.relative_to(HERE)
            out.setdefault(str(Path("share/pitap") / rel.parent), []).append(str(rel))
    return sorted(out.items())


setup(
    name="pitap",
    version="0.1.0",
    description="Open-source tap-to-pay terminal firmware for the Raspberry Pi",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["firmware*", "drivers*", "ui*"]),
    package_data={"ui": ["fonts/*"], "firmware.api": ["openapi.json", "static/*"]},
    data_files=shipped_config(),
    install_requires=[
        "nfcpy>=1.0.4",
        "pyserial>=3.5",
        "cryptography>=42",
        "pillow>=10",
        "pyiso8583>=4.0",
        "pyemv>=1.5",
        "python-escpos>=3.1",
        "qrcode>=7.4",
        "packaging>=23",  # image build: pitap's requirements evaluated for the Pi (aarch64)
        "aiohttp>=3.9",  # the local terminal API and the cashier page (firmware.api)
    ],
    extras_require={
        "pi": [
            # RPi.GPIO on 32-bit Raspberry Pi OS; rpi-lgpio (same RPi.GPIO module, on lgpio)
            # on 64-bit, which is the only one that drives a Pi 5's GPIO.
            "RPi.GPIO>=0.7; platform_machine in 'armv6l armv7l'",
            "rpi-lgpio>=0.6; platform_machine == 'aarch64'",
            "spidev>=3.6; platform_machine in 'armv6l armv7l aarch64'",
        ],
        # pyzbar: the tests decode the UPI QR from the screen's PNG (needs libzbar0, apt)
        # selenium: the cashier page driven in headless Chromium (chromium-driver, apt)
        # jsonschema: the API's answers checked against docs/openapi.json by a till of the tests
        "dev": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6", "mypy>=1.10",
                "pyzbar>=0.1.9", "selenium>=4.10", "jsonschema>=4.17"],
        # coverage-guided fuzzing of tests/fuzz/ (`make fuzz`)
        "fuzz": ["atheris>=2.3"],
    },
    entry_points={
        "console_scripts": ["pitap = firmware.cli:main"],
        "pitap.acquirers": ["iso8583 = firmware.host.iso8583_acquirer:Iso8583Acquirer"],
        "pitap.upi": ["http = firmware.upi.http_psp:HttpPsp"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
    ],
)
