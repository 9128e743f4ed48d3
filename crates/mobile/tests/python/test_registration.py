"""The generated phone interface, driven from Python as an app drives it from Kotlin or Swift.

The module is the committed `bindings/python/mynacard_mobile.py`, loaded with the library built
with the `sim` feature, whose path is in MYNACARD_MOBILE_LIB. The NfcTag and PhoneTerminal
callbacks are implemented here; the tag forwards every APDU to a simulated card, and the
registrations go to the embedded reference service.

    MYNACARD_MOBILE_LIB=target/debug/libmynacard_mobile.so \\
        python3 crates/mobile/tests/python/test_registration.py -v
"""

import concurrent.futures
import importlib
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = os.path.join(HERE, "..", "..", "bindings", "python", "mynacard_mobile.py")


def load_bindings():
    """Imports the generated module next to the library it loads (UniFFI's Python bindings
    look for the library in the module's directory). A missing library is a failure."""
    lib = os.environ.get("MYNACARD_MOBILE_LIB")
    if not lib or not os.path.isfile(lib):
        raise RuntimeError(
            "MYNACARD_MOBILE_LIB must name the built library "
            "(cargo build -p mynacard-mobile --features sim)"
        )
    directory = tempfile.mkdtemp(prefix="mynacard-mobile-py.")
    shutil.copy(MODULE, directory)
    os.symlink(os.path.abspath(lib), os.path.join(directory, os.path.basename(lib)))
    sys.path.insert(0, directory)
    try:
        return importlib.import_module("mynacard_mobile"), directory
    finally:
        sys.path.remove(directory)


mm, BINDINGS_DIR = load_bindings()

PIN = "1234"
APP_ID = "app-0001"


class SimTag(mm.NfcTag):
    """The phone's tag: IsoDep or NFCISO7816Tag on a phone, the simulated card here."""

    def __init__(self, card, lose_when=None):
        self.card = card
        # A test's choice of the command during which the card leaves the field.
        self.lose_when = lose_when
        self.apdus = 0
        self.timeouts = []

    def transceive(self, apdu):
        if self.lose_when is not None and self.lose_when(apdu):
            # As an app maps Android's TagLostException: the command may have reached the card.
            self.card.transmit(apdu)
            self.card.remove()
            raise mm.TagError.TagLost()
        self.apdus += 1
        return self.card.transmit(apdu)

    def max_transceive_length(self):
        return self.card.max_transceive_length()

    def extended_length_supported(self):
        return self.card.extended_length_supported()

    def set_timeout(self, millis):
        self.timeouts.append(millis)


class Screens(mm.PhoneTerminal):
    """The app's consent screen and PIN pad."""

    def __init__(self, pin=PIN, agree=True):
        self.pins = [pin] if isinstance(pin, str) or pin is None else list(pin)
        self.agree = agree
        self.consents = []
        self.retries_seen = []

    def consent(self, text):
        self.consents.append(text)
        return self.agree

    def pin(self, retries_left):
        self.retries_seen.append(retries_left)
        pin = self.pins.pop(0) if self.pins else None
        # An empty string is the person cancelling.
        return pin if pin is not None else ""


def is_verify_with_pin(apdu):
    """VERIFY (INS 20) carrying a PIN, not the empty VERIFY that reads the tries."""
    return len(apdu) > 5 and apdu[1] == 0x20


def off_main_thread(call, *args):
    """Runs a blocking call on a worker thread, as an app must (never on the UI thread)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call, *args).result(timeout=120)


class PhoneRegistration(unittest.TestCase):
    def setUp(self):
        self.service = mm.SimService.start()
        self.addCleanup(self.service.stop)
        self.registration = mm.Registration(self.service.url(), APP_ID, "en")

    def register(self, card, screens, **tag_options):
        tag = SimTag(card, **tag_options)
        outcome = off_main_thread(self.registration.register_with_pin, tag, screens)
        return outcome, tag

    def test_pin_registration_registers_the_simulated_card(self):
        card = mm.SimulatedCard("contactless")
        screens = Screens()
        outcome, tag = self.register(card, screens)

        self.assertEqual(outcome.kind, mm.OutcomeKind.REGISTERED)
        self.assertEqual(outcome.name, "registered")
        self.assertTrue(outcome.success)
        self.assertTrue(outcome.registration_id)
        self.assertIsNone(outcome.retries_left)
        self.assertEqual(self.service.registration_count(), 1)
        # The consent was shown once, as text, before anything was registered.
        self.assertEqual(len(screens.consents), 1)
        self.assertIn("health insurance", screens.consents[0].lower())
        # The PIN was asked once, with the tries read from the card before VERIFY.
        self.assertEqual(screens.retries_seen, [3])
        self.assertEqual(card.auth_pin_retries(), 3)
        # The library asked the phone for a timeout long enough for on-card RSA.
        self.assertEqual(tag.timeouts, [20000])
        # Every APDU crossed the callback.
        self.assertEqual(outcome.apdu_count, tag.apdus)
        self.assertGreater(tag.apdus, 0)

    def test_the_simulated_card_is_a_tag_itself(self):
        card = mm.SimulatedCard("contactless")
        outcome = off_main_thread(
            self.registration.register_with_pin, card.as_tag(), Screens()
        )
        self.assertEqual(outcome.kind, mm.OutcomeKind.REGISTERED)
        self.assertEqual(self.service.registration_count(), 1)

    def test_a_second_registration_finds_the_card_registered(self):
        card = mm.SimulatedCard("contactless")
        first, _ = self.register(card, Screens())
        again, _ = self.register(card, Screens())
        self.assertEqual(first.kind, mm.OutcomeKind.REGISTERED)
        self.assertEqual(again.kind, mm.OutcomeKind.ALREADY_REGISTERED)
        self.assertEqual(again.registration_id, first.registration_id)
        self.assertEqual(self.service.registration_count(), 1)

    def test_a_wrong_pin_says_the_tries_left(self):
        card = mm.SimulatedCard("contactless")
        screens = Screens(pin="0000")
        outcome, _ = self.register(card, screens)

        self.assertEqual(outcome.kind, mm.OutcomeKind.WRONG_PIN)
        self.assertEqual(outcome.name, "wrong_pin")
        self.assertFalse(outcome.success)
        self.assertEqual(outcome.retries_left, 2)
        self.assertIsNone(outcome.registration_id)
        self.assertEqual(screens.retries_seen, [3])
        # Exactly one try was spent.
        self.assertEqual(card.auth_pin_retries(), 2)
        self.assertEqual(self.service.registration_count(), 0)

        # The next run reads the lowered count before asking, and the right PIN registers.
        screens = Screens()
        outcome, _ = self.register(card, screens)
        self.assertEqual(screens.retries_seen, [2])
        self.assertEqual(outcome.kind, mm.OutcomeKind.REGISTERED)
        self.assertEqual(card.auth_pin_retries(), 3)

    def test_the_last_try_is_never_spent(self):
        card = mm.SimulatedCard("contactless")
        for left in (2, 1):
            outcome, _ = self.register(card, Screens(pin="0000"))
            self.assertEqual(outcome.retries_left, left)
        screens = Screens()
        outcome, tag = self.register(card, screens)
        self.assertEqual(outcome.kind, mm.OutcomeKind.LAST_ATTEMPT_REFUSED)
        self.assertEqual(screens.retries_seen, [])
        self.assertEqual(card.auth_pin_retries(), 1)

    def test_a_declined_consent_asks_no_pin(self):
        card = mm.SimulatedCard("contactless")
        screens = Screens(agree=False)
        outcome, _ = self.register(card, screens)
        self.assertEqual(outcome.kind, mm.OutcomeKind.CONSENT_DECLINED)
        self.assertEqual(screens.retries_seen, [])
        self.assertEqual(self.service.registration_count(), 0)

    def test_a_cancelled_pin_pad_cancels(self):
        card = mm.SimulatedCard("contactless")
        outcome, _ = self.register(card, Screens(pin=None))
        self.assertEqual(outcome.kind, mm.OutcomeKind.CANCELLED)
        self.assertEqual(card.auth_pin_retries(), 3)

    def test_a_phone_without_extended_length_registers_in_short_apdus(self):
        card = mm.SimulatedCard("no-extended")
        self.assertFalse(card.extended_length_supported())
        short, short_tag = self.register(card, Screens())
        self.assertEqual(short.kind, mm.OutcomeKind.REGISTERED)
        extended, _ = self.register(mm.SimulatedCard("contactless"), Screens())
        # The certificate is read in more, shorter answers.
        self.assertGreater(short.apdu_count, extended.apdu_count)
        self.assertEqual(short.apdu_count, short_tag.apdus)

    def test_a_tag_lost_before_verify_ends_card_removed(self):
        card = mm.SimulatedCard("contactless")
        outcome, tag = self.register(card, Screens(), lose_when=lambda apdu: True)
        self.assertEqual(outcome.kind, mm.OutcomeKind.CARD_REMOVED)
        self.assertFalse(outcome.attempt_may_have_been_counted)
        self.assertEqual(tag.apdus, 0)
        self.assertEqual(self.service.registration_count(), 0)

    def test_a_tag_lost_during_verify_may_have_counted_the_try(self):
        card = mm.SimulatedCard("contactless")
        outcome, _ = self.register(card, Screens(pin="0000"), lose_when=is_verify_with_pin)
        self.assertEqual(outcome.kind, mm.OutcomeKind.CARD_REMOVED)
        self.assertTrue(outcome.attempt_may_have_been_counted)
        # The wrong PIN reached the card before it left: the library did not send it again.
        self.assertEqual(card.auth_pin_retries(), 2)
        self.assertEqual(self.service.registration_count(), 0)

    def test_an_app_exception_in_transceive_is_a_card_error(self):
        class FailingTag(SimTag):
            def transceive(self, apdu):
                if self.apdus >= 2:
                    raise RuntimeError("the phone's NFC stack failed")
                return super().transceive(apdu)

        card = mm.SimulatedCard("contactless")
        outcome = off_main_thread(
            self.registration.register_with_pin, FailingTag(card), Screens()
        )
        self.assertEqual(outcome.kind, mm.OutcomeKind.CARD_ERROR)
        self.assertEqual(card.auth_pin_retries(), 3)
        self.assertEqual(self.service.registration_count(), 0)

    def test_eligibility_after_registration(self):
        card = mm.SimulatedCard("contactless")
        registered, _ = self.register(card, Screens())
        self.assertEqual(registered.kind, mm.OutcomeKind.REGISTERED)
        outcome = off_main_thread(
            self.registration.check_eligibility, SimTag(card), Screens()
        )
        self.assertEqual(outcome.kind, mm.OutcomeKind.ELIGIBLE)
        self.assertTrue(outcome.success)


class Arguments(unittest.TestCase):
    def test_an_unknown_profile_is_an_invalid_argument(self):
        with self.assertRaises(mm.MobileError.InvalidArgument):
            mm.SimulatedCard("no-such-card")

    def test_an_empty_app_id_is_an_invalid_argument(self):
        with self.assertRaises(mm.MobileError.InvalidArgument):
            mm.Registration("http://127.0.0.1:9", "", "en")


def tearDownModule():
    shutil.rmtree(BINDINGS_DIR, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
