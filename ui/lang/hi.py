"""हिन्दी: screen texts in Hindi (same keys as en.py).

Wording reviewed on 2026-12-02, every string against en.py and it.py, for the short everyday Hindi
of Indian shop terminals, soundboxes and bank/NPCI usage (भुगतान payment, धनवापसी refund, रद्द
void/cancel, पास लाएँ present, UPI/PIN-style terms as shops write them). Still uncertain, marked
`# DRAFT`: the pre-authorization words (preauth, increment, completion, held, released), which
Indian terminals mostly print in English and which have only bank-glossary Hindi. The review was
not a native speaker's: have one read the screens before a shop relies on them.

Devanagari is drawn with Lohit Devanagari (ui/fonts, SIL OFL 1.1; it has no bold face, so bold
is drawn with a stroke) through Pillow's Raqm layout (HarfBuzz shaping of conjuncts and vowel
signs). Amounts keep Latin digits with Indian grouping: ₹1,23,456.00. Receipt printers in
ESC/POS text mode have no Devanagari code page, so printed receipts fall back to English.
"""

NAME = "हिन्दी"
DECIMAL_SEP = "."
GROUP_SEP = ","
SYMBOL_FIRST = True
SYMBOL_SPACE = False
GROUPING = (3, 2)
FONTS = {"regular": "Lohit-Devanagari.ttf"}
PRINTABLE = False  # ESC/POS text mode cannot print this script

TEXT = {
    "subtotal": "उप-योग",
    "tip": "टिप",
    "welcome": "स्वागत है",
    "ready": "तैयार",
    "ready_hint": "शुरू करने के लिए राशि डालें",
    "enter_amount": "राशि डालें",
    "keys_hint": "ठीक {enter}   मिटाएँ {clear}   रद्द {cancel}",
    "purchase": "ख़रीद",
    "refund": "धनवापसी",
    "present_card": "कार्ड या फ़ोन पास लाएँ",
    "partial_approved": "{total} में से {paid} स्वीकृत",
    "partial_left": "{left} बाकी",
    "partial_hint": "बाकी राशि के लिए कार्ड या फ़ोन पास लाएँ",
    "tap_here": "यहाँ टैप करें",
    "processing": "प्रक्रिया जारी है",
    "please_wait": "कृपया प्रतीक्षा करें…",
    "do_not_remove": "कार्ड न हटाएँ",
    "card_read": "कार्ड पढ़ लिया गया",
    "remove_card": "कृपया कार्ड हटाएँ",
    "approved": "स्वीकृत",
    "approved_refund": "धनवापसी स्वीकृत",
    "declined": "अस्वीकृत",
    "declined_refund": "धनवापसी अस्वीकृत",
    "auth_code": "अनुमोदन कोड",
    "approved_offline": "ऑफ़लाइन स्वीकृत",
    "not_charged": "राशि नहीं ली गई",
    "not_charged_refund": "धनवापसी नहीं हुई",
    "not_charged_hint": "फिर से कोशिश करें या दूसरे तरीके से भुगतान करें",
    "not_charged_hint_refund": "धनवापसी बाद में फिर से करें",
    "card": "कार्ड",
    "see_phone": "फ़ोन देखें",
    "see_phone_hint": "फ़ोन पर दिए निर्देशों का पालन करें, फिर दोबारा टैप करें",
    "one_card_only": "केवल एक कार्ड पास लाएँ",
    "one_card_only_hint": "एक से अधिक कार्ड पास में हैं",
    "try_again": "फिर से कोशिश करें",
    "try_again_hint": "कृपया दोबारा टैप करें",
    "no_card": "कोई कार्ड नहीं",
    "no_card_hint": "समय पर कोई कार्ड नहीं मिला",
    "out_of_service": "सेवा उपलब्ध नहीं",
    "out_of_service_hint": "क्षमा करें, अभी भुगतान संभव नहीं है",
    "closed": "बंद",
    "closed_hint": "यह टर्मिनल अभी भुगतान नहीं ले रहा है",
    "cancelled": "रद्द किया गया",
    "cancelled_hint": "कोई राशि नहीं ली गई",
    "cancelled_hint_refund": "कोई धनवापसी नहीं हुई",
    "settlement": "निपटान",
    "sales": "बिक्री",
    "refunds": "धनवापसी",
    "net": "शुद्ध",
    "count": "संख्या",
    "batch": "बैच",
    "balanced": "योग मेल खाते हैं",
    "unbalanced": "योग मेल नहीं खाते",
    "receipt": "रसीद",
    "scan_receipt": "रसीद के लिए स्कैन करें",
    "printer_problem": "प्रिंटर: {problem}",
    "printer_offline": "प्रिंटर ऑफ़लाइन",
    "printer_no_paper": "काग़ज़ ख़त्म",
    "merchant_copy": "व्यापारी प्रति",
    "customer_copy": "ग्राहक प्रति",
    "terminal": "टर्मिनल",
    "merchant": "व्यापारी",
    "date": "तारीख़",
    "amount": "राशि",
    "total": "कुल",
    "result": "परिणाम",
    "application": "एप्लिकेशन",
    "contactless": "कॉन्टैक्टलेस",
    "keep_receipt": "कृपया यह रसीद रखें",
    "thank_you": "धन्यवाद",
    "void": "रद्द",
    "voided": "रद्द किया गया",
    "preauth": "पूर्व-प्राधिकरण",  # DRAFT
    "increment": "वृद्धि",  # DRAFT
    "completion": "पूर्णता",  # DRAFT
    "held": "रोकी गई राशि",  # DRAFT
    "completed": "ली गई राशि",
    "part": "भाग",
    "total_paid": "कुल भुगतान",
    "released": "राशि मुक्त की गई",  # DRAFT
    "void_entry": "रद्द करने के लिए भुगतान संख्या",
    "tip_title": "टिप जोड़ें?",
    "tip_amount": "राशि {amount}",
    "tip_preset": "{button}   {percent}%   {amount}",
    "tip_custom": "{button}   दूसरी राशि",
    "tip_none": "{button}   कोई टिप नहीं",
    "tip_entry": "टिप की राशि",
    "tip_most": "अधिकतम {amount}",
    "tip_too_much": "बहुत ज़्यादा: अधिकतम {amount}",
    "voided_hint": "इसके लिए कोई राशि नहीं ली जाएगी",
    "void_refused": "रद्द नहीं हो सकता",
    "void_refused_hint": "भुगतान संख्या जाँचें",
    "void_refused_unknown": "इस संख्या का कोई भुगतान नहीं",
    "void_refused_not_purchase": "होल्ड रद्द नहीं होता, मुक्त किया जाता है",  # DRAFT
    "void_refused_already_voided": "पहले ही रद्द हो चुका",
    "void_refused_refunded": "पहले ही धनवापसी हो चुकी",
    "void_refused_not_approved": "स्वीकृत नहीं: रद्द करने को कुछ नहीं",
    "void_refused_settled": "निपटान हो चुका: धनवापसी करें",
    "void_refused_other_currency": "दूसरी मुद्रा: धनवापसी करें",
    "void_refused_upi": "UPI: धनवापसी करें",
    "aid": "AID",
    "response": "उत्तर",
    "cvm_cdcvm": "डिवाइस द्वारा सत्यापित",
    "cvm_no_cvm": "कार्डधारक का सत्यापन नहीं",
    "cvm_signature": "हस्ताक्षर",
    "cvm_online_pin": "पिन ऑनलाइन सत्यापित",
    "reason_insufficient_funds": "अपर्याप्त शेष राशि",
    "reason_do_not_honour": "कार्ड के बैंक ने अस्वीकार किया",
    "reason_issuer_unavailable": "कार्ड का बैंक उपलब्ध नहीं",
    "reason_card_declined": "कार्ड ने अस्वीकार किया",
    "reason_no_reply": "बैंक से कोई उत्तर नहीं",
    "reason_host_unavailable": "बैंक से संपर्क नहीं हो सका",
    "reason_not_supported": "कार्ड समर्थित नहीं",
    "reason_expired": "कार्ड की अवधि समाप्त",
    "reason_limit": "राशि कॉन्टैक्टलेस सीमा से अधिक",
    "reason_offline_limit": "बैंक से संपर्क नहीं, ऑफ़लाइन सीमा पार",
    "stored_offline": "बैंक को भेजना बाकी: {count} · {amount}",
    "declined_late": "बाद में अस्वीकृत: {count}",
    "reason_error": "लेन-देन विफल",
    "upi_scan": "UPI से भुगतान के लिए स्कैन करें",
    "upi_payer": "भुगतानकर्ता",
    "reason_upi_failed": "UPI भुगतान प्राप्त नहीं हुआ",
    "reason_upi_unknown": "UPI: स्थिति की जाँच जारी है",
    "upi_unknown_hint": "पुष्टि होने तक सामान न दें",
    "upi_offer": "UPI से भुगतान करें?",
    "upi_offer_hint": "F2 (B): UPI QR दिखाएँ",
    "service_api": "टर्मिनल API",  # DRAFT
    "service_api_off": "API बंद है",  # DRAFT
    "service_api_fingerprint": "प्रमाणपत्र SHA-256",  # DRAFT
    "service_api_plain": "केवल इसी Pi पर HTTP: कोई प्रमाणपत्र नहीं",  # DRAFT
    "reason_pin_needed": "इस कार्ड के लिए यहाँ पिन चाहिए: फ़ोन वॉलेट से भुगतान करें",
}
