"""Stripe test-mode behaviour that localstripe 1.15.10 lacks, added when serve.py starts it.

localstripe has PaymentIntents, manual capture, refunds and signed webhooks, but not what the
Payment service's Stripe adapter (functions/payment/src/clients/stripe.rs) and its tests rely on
from Stripe's test mode. `install()` patches these in and returns the application to serve:

1. Tokens as Stripe takes them on a PaymentIntent: `payment_method_data[type]=card` with
   `payment_method_data[card][token]=` tok_visa, tok_mastercard, tok_chargeDeclined, and the
   project's tok_settlementFails; any other tok_* is 400 `resource_missing` ("No such token").
2. pm_card_mastercard and pm_card_chargeDeclined, as Stripe has them.
3. Declines as Stripe answers them: 402 {"error": {"type": "card_error", "code": "card_declined",
   "decline_code": "generic_decline", "charge", "payment_intent"}}; 4000000000000002
   (pm_card_visa_chargeDeclined, tok_chargeDeclined) declines when charged, as on Stripe
   (stock localstripe declines it only when attached to a customer).
4. tok_settlementFails (card 4000000000004444, ours, not Stripe's): it authorizes, and its capture
   is refused as Stripe refuses to capture an expired authorization: 400 `charge_expired_for_capture`,
   the PaymentIntent becomes `canceled` and payment_intent.canceled is sent. On Stripe an
   uncaptured authorization expires after about 7 days; this makes that happen at once.
5. Stripe's state rules and events: capture or cancel in the wrong state is 400
   `payment_intent_unexpected_state` (stock localstripe captures a canceled PaymentIntent);
   a refund beyond what was captured is 400 `charge_already_refunded`, `amount_too_large` or
   `charge_not_captured` (stock: refunds anything, again and again); payment_intent.canceled
   is sent on a cancel and charge.refunded on a refund.
6. Stripe's Search API for one query form, `GET /v1/payment_intents/search?query=
   metadata['payment_id']:'pay_...'`: the adapter's look-up when it resumes an authorization,
   and the tests' "PaymentIntents of this payment" (localstripe's list cannot filter).

Idempotency-Key is deliberately still ignored, as localstripe does: a second create under the
same key makes a second PaymentIntent here, so a test that counts them sees any duplicate our
own claims let through.

These patch localstripe's internals (PaymentIntent._api_create, PaymentMethod's test articles
and decline rule, Charge._raise_failure, Refund.__init__), which is safe only because
requirements.txt pins localstripe exactly: check this file when that pin moves.
"""

import re

from aiohttp import web
from localstripe import resources as r
from localstripe import server
from localstripe.errors import UserError
from localstripe.webhooks import schedule_webhook

SETTLEMENT_FAILS = "4000000000004444"
TOKENS = {
    "tok_visa": "4242424242424242",
    "tok_mastercard": "5555555555554444",
    "tok_chargeDeclined": "4000000000000002",
    "tok_settlementFails": SETTLEMENT_FAILS,
}
PAYMENT_METHODS = {"pm_card_mastercard": "5555555555554444", "pm_card_chargeDeclined": "4000000000000002"}


def _card(number):
    return r.PaymentMethod(type="card", card=dict(number=number, exp_month="12", exp_year="2034", cvc="123"))


def _tokens():
    """1. payment_method_data[card][token] on create."""
    create = r.PaymentIntent._api_create.__func__

    def api_create(cls, payment_method_data=None, **data):
        if payment_method_data is not None:
            given = payment_method_data if isinstance(payment_method_data, dict) else {}
            card = given.get("card") if isinstance(given.get("card"), dict) else {}
            token = card.get("token")
            if given.get("type") != "card" or not isinstance(token, str):
                raise UserError(400, "Bad request")
            if token not in TOKENS:
                raise UserError(400, f"No such token: '{token}'",
                                {"code": "resource_missing", "param": "payment_method_data[card][token]"})
            data["payment_method"] = _card(TOKENS[token]).id
        return create(cls, **data)

    r.PaymentIntent._api_create = classmethod(api_create)


def _payment_methods():
    """2. More of Stripe's canonical test PaymentMethods."""
    canonical = r.PaymentMethod._try_get_canonical_test_article.__func__

    def canonical_more(cls, id):
        if id in PAYMENT_METHODS:
            return _card(PAYMENT_METHODS[id])
        return canonical(cls, id)

    r.PaymentMethod._try_get_canonical_test_article = classmethod(canonical_more)


def _declines():
    """3. 0002 declines when charged; a decline is Stripe's card_error with a decline_code."""
    declined = r.PaymentMethod._charging_is_declined

    def charging_is_declined(self):
        return declined(self) or (self.type == "card" and self._card_number == "4000000000000002")

    r.PaymentMethod._charging_is_declined = charging_is_declined

    def raise_failure(self):
        contents = {"code": self.failure_code, "decline_code": "generic_decline", "charge": self.id}
        if self.payment_intent:
            contents["payment_intent"] = r.PaymentIntent._api_retrieve(self.payment_intent)._export()
        error = UserError(402, self.failure_message, contents)
        error.body["error"]["type"] = "card_error"
        raise error

    r.Charge._raise_failure = raise_failure


def _unexpected_state(pi, verb):
    raise UserError(400, f"This PaymentIntent could not be {verb} because it has a status of {pi.status}.",
                    {"code": "payment_intent_unexpected_state", "payment_intent": pi._export()})


def _capture_and_cancel():
    """4. and 5.: capture and cancel, as routes of their own (see install)."""
    capture = r.PaymentIntent._api_capture
    cancel = r.PaymentIntent._api_cancel

    def api_capture(id=None, **kwargs):
        pi = r.PaymentIntent._api_retrieve(id)
        charge = pi.latest_charge
        method = r.PaymentMethod._api_retrieve(charge.payment_method) if charge else None
        if getattr(method, "_card_number", None) == SETTLEMENT_FAILS and pi.status == "requires_capture":
            pi._canceled = True
            schedule_webhook(r.Event("payment_intent.canceled", pi))
            raise UserError(400, "The charge has expired and can no longer be captured.",
                            {"code": "charge_expired_for_capture", "payment_intent": pi._export()})
        if pi.status != "requires_capture":
            _unexpected_state(pi, "captured")
        return capture(id=id, **kwargs)

    def api_cancel(id=None, **kwargs):
        pi = r.PaymentIntent._api_retrieve(id)
        if pi.status in ("succeeded", "canceled", "processing"):
            _unexpected_state(pi, "canceled")
        pi = cancel(id=id, **kwargs)
        schedule_webhook(r.Event("payment_intent.canceled", pi))
        return pi

    return api_capture, api_cancel


def _refunds():
    """5. Only what was captured and not yet refunded; charge.refunded when done."""
    refund_init = r.Refund.__init__

    def refund_init_checked(self, charge=None, payment_intent=None, amount=None, **kwargs):
        if charge:
            ch = r.Charge._api_retrieve(charge)
        elif payment_intent:
            ch = r.PaymentIntent._api_retrieve(payment_intent).latest_charge
        else:
            ch = None
        if ch is not None and ch.status == "succeeded":
            left = (ch.amount if ch.captured else 0) - ch.amount_refunded
            if left <= 0:
                if ch.captured:
                    raise UserError(400, f"Charge {ch.id} has already been refunded.", {"code": "charge_already_refunded"})
                raise UserError(400, "This PaymentIntent has not been captured: cancel it instead.",
                                {"code": "charge_not_captured"})
            if amount is not None and r.try_convert_to_int(amount) > left:
                raise UserError(400, "Refund amount is greater than unrefunded amount on charge.",
                                {"code": "amount_too_large"})
        refund_init(self, charge=charge, payment_intent=payment_intent, amount=amount, **kwargs)
        schedule_webhook(r.Event("charge.refunded", r.Charge._api_retrieve(self.charge)))

    r.Refund.__init__ = refund_init_checked


def _search(query=None, limit=None, **kwargs):
    """6. metadata['key']:'value', the one query form implemented."""
    match = re.fullmatch(r"metadata\['([^']+)'\]:'([^']*)'", query or "")
    if kwargs or not match:
        raise UserError(400, "Only metadata['key']:'value' queries are implemented here")
    found = r.List("/v1/payment_intents/search", limit=limit)
    found.object = "search_result"
    found._list = [v for k, v in r.store.items()
                   if k.startswith("payment_intent:") and v.metadata.get(match[1]) == match[2]]
    return found


def install():
    """Patches localstripe and returns the application to serve instead of localstripe.server.app."""
    _tokens()
    _payment_methods()
    _declines()
    _refunds()
    api_capture, api_cancel = _capture_and_cancel()
    # localstripe bound its routes to the original functions when it was imported, so ours go in
    # a new application that lists them before localstripe's own routes (the first match wins).
    app = web.Application(middlewares=server.app.middlewares)
    app.on_response_prepare.extend(server.app.on_response_prepare)
    for method, path, func in (("POST", "/v1/payment_intents/{id}/capture", api_capture),
                               ("POST", "/v1/payment_intents/{id}/cancel", api_cancel),
                               ("GET", "/v1/payment_intents/search", _search)):
        app.router.add_route(method, path, server.api_extra(func, path))
    for route in server.app.router.routes():
        app.router.add_route(route.method, route.resource.canonical, route.handler)
    return app
