"""The EMV contactless kernel: one tap in (`card.transceive`), one Outcome out.

It sees a card only as `transceive(bytes) -> bytes` and never touches the network or hardware.

    kernel            Kernel: configuration, the order of the steps, faults -> Outcome
    outcome           public types: TerminalTransaction, Outcome, OutcomeKind, Prompt, CvmMethod
    session           Session: the state of one application attempt, field 55, -> Outcome
    verdict           Verdict / FlowEnd: how a step concludes or stops the tap
    tags, flags       named tags (bytes-valued), bit fields (IntFlag) and the CID cryptogram type
    tlv, dol, apdu    BER-TLV, data object lists, command APDUs and the exchange
    aids, capk        the AID table and the CA public keys (configuration data)
    dates             EMV dates (YYMMDD, the month-granular expiry rule; offline acceptance uses it)
    entry_point       PPSE directory, candidates, pre-processing (typed skip reasons)
    the steps, in EMV order (none imports kernel):
    selection         SELECT PPSE, choose the candidates, SELECT AID
    initiation        PDOL data, GET PROCESSING OPTIONS
    records           READ RECORD per AFL entry, the static data for ODA
    restrictions      processing restrictions (expiry, effective date)
    cvm               cardholder verification (by CTQ, by AIP), 9F34
    risk_management   terminal risk management (floor limit, offline count)
    data_authentication  offline data authentication over the session (SDA, DDA, fDDA, CDA keys)
    action_analysis   terminal action analysis (TVR vs TAC/IAC -> cryptogram to ask for)
    cryptogram        the cryptogram from GPO or GENERATE AC, CID checks
    cda               the CDA check of a GENERATE AC answer
    card_action       what the card's cryptogram means: the Verdict
    oda               the cryptography of ODA (pure functions over bytes)
"""

# What the rest of the terminal may import: the kernel, its public types and its configuration
# data. Everything else here is the kernel's own (tests reach in; the terminal does not).
__all__ = ["aids", "capk", "dates", "kernel", "outcome"]
