"""Field provisioning: SD image build, flash with verify, first boot, hardware self-test.

Everything here runs on a technician's machine (image build, flash) or once on the terminal
(first boot, diag). It never takes part in a payment and never reads card data.
"""

from firmware.errors import PitapError


class ProvisionError(PitapError):
    """A provisioning step cannot go on; the message is one line a technician acts on."""
