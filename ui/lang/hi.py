"""हिन्दी: screen texts in Hindi (same keys as en.py). Draft wording: have a native speaker
review it before a shop uses it.

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
    "one_card_only": "केवल एक कार्ड दिखाएँ",
    "one_card_only_hint": "एक से अधिक कार्ड पास में हैं",
    "try_again": "फिर से कोशिश करें",
    "try_again_hint": "कृपया दोबारा टैप करें",
    "no_card": "कोई कार्ड नहीं",
    "no_card_hint": "समय पर कोई कार्ड नहीं दिखाया गया",
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
    "reason_insufficient_funds": "अपर्याप्त शेष राशि",
    "reason_do_not_honour": "कार्ड जारीकर्ता ने अस्वीकार किया",
    "reason_issuer_unavailable": "कार्ड जारीकर्ता उपलब्ध नहीं",
    "reason_card_declined": "कार्ड ने अस्वीकार किया",
    "reason_no_reply": "बैंक से कोई उत्तर नहीं",
    "reason_host_unavailable": "बैंक से संपर्क नहीं हो सका",
    "reason_not_supported": "कार्ड समर्थित नहीं",
    "reason_expired": "कार्ड की अवधि समाप्त",
    "reason_limit": "राशि कॉन्टैक्टलेस सीमा से अधिक",
    "reason_error": "लेन-देन विफल",
    "reason_pin_needed": "इस कार्ड के लिए यहाँ पिन चाहिए: फ़ोन वॉलेट से भुगतान करें",
}
