"""EMV data object tags by name (EMV Book 3 Annex A, Book B, Kernel 2 and 3 specifications).

`Tag` members are `bytes` (a bytes-valued Enum), so they are the very keys the tlv module decodes:
`card[Tag.APPLICATION_CRYPTOGRAM]` finds what `tlv.flatten` stored under b"\\x9f\\x26", and
`tlv.encode(Tag.AIP, value)` writes it. Only the tags the kernel reads or writes are named here.
Holds no behaviour and imports nothing of the kernel.
"""

from __future__ import annotations

from enum import Enum


class Tag(bytes, Enum):
    """A tag as its encoded bytes; `.label` is its hex spelling for reasons ("9F26")."""

    # -- templates ---------------------------------------------------------------------
    APPLICATION_TEMPLATE = bytes.fromhex("61")  # a PPSE directory entry
    FCI_TEMPLATE = bytes.fromhex("6F")
    READ_RECORD_TEMPLATE = bytes.fromhex("70")
    RESPONSE_FORMAT_2 = bytes.fromhex("77")
    RESPONSE_FORMAT_1 = bytes.fromhex("80")
    FCI_PROPRIETARY_TEMPLATE = bytes.fromhex("A5")
    FCI_ISSUER_DISCRETIONARY_DATA = bytes.fromhex("BF0C")
    # -- application selection ---------------------------------------------------------
    APPLICATION_IDENTIFIER = bytes.fromhex("4F")  # ADF name in a directory entry
    APPLICATION_LABEL = bytes.fromhex("50")
    DF_NAME = bytes.fromhex("84")
    APPLICATION_PRIORITY_INDICATOR = bytes.fromhex("87")
    KERNEL_IDENTIFIER = bytes.fromhex("9F2A")
    PDOL = bytes.fromhex("9F38")
    # -- card data ---------------------------------------------------------------------
    TRACK2_EQUIVALENT_DATA = bytes.fromhex("57")
    PAN = bytes.fromhex("5A")
    APPLICATION_EXPIRATION_DATE = bytes.fromhex("5F24")
    APPLICATION_EFFECTIVE_DATE = bytes.fromhex("5F25")
    PAN_SEQUENCE_NUMBER = bytes.fromhex("5F34")
    AIP = bytes.fromhex("82")  # application interchange profile
    CDOL1 = bytes.fromhex("8C")
    AFL = bytes.fromhex("94")  # application file locator
    IAC_DENIAL = bytes.fromhex("9F0E")
    IAC_ONLINE = bytes.fromhex("9F0F")
    ISSUER_APPLICATION_DATA = bytes.fromhex("9F10")
    APPLICATION_CRYPTOGRAM = bytes.fromhex("9F26")
    CRYPTOGRAM_INFORMATION_DATA = bytes.fromhex("9F27")  # CID
    ATC = bytes.fromhex("9F36")  # application transaction counter
    DDOL = bytes.fromhex("9F49")
    TRACK2_DATA = bytes.fromhex("9F6B")
    CTQ = bytes.fromhex("9F6C")  # card transaction qualifiers
    FORM_FACTOR_INDICATOR = bytes.fromhex("9F6E")
    POS_CARDHOLDER_INTERACTION_INFORMATION = bytes.fromhex("DF4B")
    # -- offline data authentication ---------------------------------------------------
    CA_PUBLIC_KEY_INDEX = bytes.fromhex("8F")
    ISSUER_PUBLIC_KEY_CERTIFICATE = bytes.fromhex("90")
    ISSUER_PUBLIC_KEY_REMAINDER = bytes.fromhex("92")
    SIGNED_STATIC_APPLICATION_DATA = bytes.fromhex("93")
    ISSUER_PUBLIC_KEY_EXPONENT = bytes.fromhex("9F32")
    DATA_AUTHENTICATION_CODE = bytes.fromhex("9F45")
    ICC_PUBLIC_KEY_CERTIFICATE = bytes.fromhex("9F46")
    ICC_PUBLIC_KEY_EXPONENT = bytes.fromhex("9F47")
    ICC_PUBLIC_KEY_REMAINDER = bytes.fromhex("9F48")
    STATIC_DATA_AUTHENTICATION_TAG_LIST = bytes.fromhex("9F4A")
    SIGNED_DYNAMIC_APPLICATION_DATA = bytes.fromhex("9F4B")
    ICC_DYNAMIC_NUMBER = bytes.fromhex("9F4C")
    CARD_AUTHENTICATION_RELATED_DATA = bytes.fromhex("9F69")
    # -- terminal data -----------------------------------------------------------------
    TRANSACTION_CURRENCY_CODE = bytes.fromhex("5F2A")
    TRANSACTION_CURRENCY_EXPONENT = bytes.fromhex("5F36")
    TVR = bytes.fromhex("95")  # terminal verification results
    TRANSACTION_DATE = bytes.fromhex("9A")
    TRANSACTION_TYPE = bytes.fromhex("9C")
    ACQUIRER_IDENTIFIER = bytes.fromhex("9F01")
    AMOUNT_AUTHORISED = bytes.fromhex("9F02")
    AMOUNT_OTHER = bytes.fromhex("9F03")
    TERMINAL_APPLICATION_VERSION_NUMBER = bytes.fromhex("9F09")
    MERCHANT_CATEGORY_CODE = bytes.fromhex("9F15")
    TERMINAL_COUNTRY_CODE = bytes.fromhex("9F1A")
    TERMINAL_FLOOR_LIMIT = bytes.fromhex("9F1B")
    TERMINAL_IDENTIFICATION = bytes.fromhex("9F1C")
    IFD_SERIAL_NUMBER = bytes.fromhex("9F1E")
    TRANSACTION_TIME = bytes.fromhex("9F21")
    TERMINAL_CAPABILITIES = bytes.fromhex("9F33")
    CVM_RESULTS = bytes.fromhex("9F34")
    TERMINAL_TYPE = bytes.fromhex("9F35")
    UNPREDICTABLE_NUMBER = bytes.fromhex("9F37")
    TRANSACTION_REFERENCE_CURRENCY_CODE = bytes.fromhex("9F3C")
    TRANSACTION_REFERENCE_CURRENCY_EXPONENT = bytes.fromhex("9F3D")
    ADDITIONAL_TERMINAL_CAPABILITIES = bytes.fromhex("9F40")
    TRANSACTION_SEQUENCE_COUNTER = bytes.fromhex("9F41")
    MERCHANT_NAME_AND_LOCATION = bytes.fromhex("9F4E")
    TTQ = bytes.fromhex("9F66")  # terminal transaction qualifiers
    CUSTOMER_EXCLUSIVE_DATA = bytes.fromhex("9F7C")

    @property
    def label(self) -> str:
        return self.hex().upper()
