"""Field provisioning: SD image build, flash with verify, first boot, hardware self-test."""
