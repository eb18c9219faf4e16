"""Hardware drivers, one module a kind of hardware, each with a real and a simulated backend.

Drivers know nothing of payments: nothing here imports `firmware`.
"""

# What the terminal may import from here (one module a kind of hardware; errors: the error root).
__all__ = ["display", "errors", "gpio", "keypad", "nfc", "printer"]
