"""Screens drawn with Pillow from plain data. No I/O, no drivers."""

# What the terminal may import from here; canvas and theme are the screens' own.
__all__ = ["lang", "money", "qr", "screens"]
