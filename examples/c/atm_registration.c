/*
 * A bank ATM registering the My Number Card for health-insurance use, in C, through the
 * mynacard C ABI.
 *
 * The ATM's own card reader is the transport: here the simulated card of the library's `sim`
 * feature stands in for it, passed as the transmit callback exactly as a reader driver's
 * function would be. The reference registration service runs embedded (also from the `sim`
 * feature); a real ATM gives mynacard_client_new its operator's service URL instead.
 *
 * The customer sees how many PIN tries the card has left (read without spending one), agrees
 * to the consent on the screen and types the PIN 1234 (the simulated card's) on the PIN pad.
 * Prints the outcome; exits 0 when the card ended up registered.
 *
 * Build and run: see README.md next to this file.
 */

#define MYNACARD_SIM 1 /* this example uses the test aids of the `sim` feature */

#include <stdio.h>
#include <string.h>

#include "mynacard.h"

/* The ATM's screen and PIN pad. */
struct atm {
    const char *keypad; /* the digits the customer types; taken once */
    int pin_asked;
    int consent_shown;
};

static int32_t show_consent(void *ctx, const char *text)
{
    struct atm *atm = ctx;
    atm->consent_shown = 1;
    printf("[screen] consent (%zu bytes of text) - customer agrees\n", strlen(text));
    return 1;
}

static int32_t ask_pin(void *ctx, int32_t retries_left, char *pin, size_t pin_cap, size_t *pin_len)
{
    struct atm *atm = ctx;
    size_t n;
    atm->pin_asked++;
    printf("[screen] enter your 4-digit PIN (%d tries left)\n", (int)retries_left);
    if (atm->keypad == NULL) {
        return 0; /* the customer pressed cancel */
    }
    n = strlen(atm->keypad);
    if (n > pin_cap) {
        return 0;
    }
    memcpy(pin, atm->keypad, n); /* the library zeroizes its buffer after this call */
    *pin_len = n;
    atm->keypad = NULL;
    printf("[screen] ****\n");
    return 1;
}

int main(void)
{
    MynacardSimService *service = NULL;
    MynacardSimCard *card = NULL;
    MynacardSession *session = NULL;
    MynacardClient *client = NULL;
    MynacardOutcome *outcome = NULL;
    MynacardStatus status;
    uint8_t *cert = NULL;
    size_t cert_len = 0;
    int32_t tries = -1;
    int exit_code = 1;
    struct atm atm = {"1234", 0, 0};

    status = mynacard_sim_service_start(&service);
    if (status != MYNACARD_STATUS_OK) {
        fprintf(stderr, "cannot start the reference service: status %d\n", (int)status);
        goto done;
    }
    printf("registration service: %s\n", mynacard_sim_service_url(service));

    status = mynacard_sim_card_new("contact", &card);
    if (status != MYNACARD_STATUS_OK) {
        fprintf(stderr, "cannot make the simulated card: status %d\n", (int)status);
        goto done;
    }
    /* The reader: its context and transmit function, and what it carries. */
    MynacardTransport reader = {
        .ctx = card,
        .transmit = mynacard_sim_transmit,
        .extended_length = 1,
        .max_response_len = 0,
        .contactless = 0,
    };

    /* Before the flow: the card's certificate and tries left, as the ATM's screen shows them. */
    status = mynacard_session_open(&reader, &session);
    if (status == MYNACARD_STATUS_OK) {
        status = mynacard_session_read_auth_certificate(session, &cert, &cert_len);
    }
    if (status == MYNACARD_STATUS_OK) {
        status = mynacard_session_auth_pin_tries_left(session, &tries);
    }
    if (status != MYNACARD_STATUS_OK) {
        fprintf(stderr, "card session failed: status %d: %s\n", (int)status,
                session ? mynacard_session_last_error(session) : "no session");
        goto done;
    }
    printf("card: authentication certificate of %zu bytes, %d PIN tries left\n", cert_len,
           (int)tries);

    status = mynacard_client_new(mynacard_sim_service_url(service), "atm-0001",
                                 MYNACARD_TERMINAL_KIND_ATM, &client);
    if (status != MYNACARD_STATUS_OK) {
        fprintf(stderr, "cannot make the client: status %d\n", (int)status);
        goto done;
    }
    MynacardTerminal terminal = {
        .ctx = &atm,
        .consent = show_consent,
        .pin = ask_pin,
        .collation_number_b = NULL, /* an ATM has no camera: */
        .match_face = NULL,
        .attest = NULL,
    };
    status = mynacard_client_run(client, MYNACARD_FLOW_PIN_REGISTRATION, &reader, &terminal,
                                 &outcome);
    if (status != MYNACARD_STATUS_OK) {
        fprintf(stderr, "registration failed: status %d: %s\n", (int)status,
                mynacard_client_last_error(client));
        goto done;
    }

    const char *id = mynacard_outcome_registration_id(outcome);
    char *message = mynacard_outcome_message(outcome, "en");
    printf("consent shown: %s; PIN asked %d time(s); %u APDUs\n", atm.consent_shown ? "yes" : "no",
           atm.pin_asked, (unsigned)mynacard_outcome_apdu_count(outcome));
    printf("outcome: %s\n", mynacard_outcome_kind_name(outcome));
    printf("registration id: %s\n", id ? id : "-");
    printf("[screen] %s\n", message ? message : "-");
    mynacard_string_free(message);
    if (mynacard_outcome_kind(outcome) == MYNACARD_OUTCOME_KIND_REGISTERED) {
        exit_code = 0;
    }

done:
    mynacard_outcome_free(outcome);
    mynacard_client_free(client);
    mynacard_bytes_free(cert, cert_len);
    mynacard_session_free(session);
    mynacard_sim_card_free(card);
    mynacard_sim_service_free(service);
    return exit_code;
}
