"""Credit packs: create, edit, deactivate/reactivate. Prices are typed as decimal
strings ("90.00") and parsed to integer cents without ever going through a float."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..audit import service as audit
from ..catalog.models import Pack
from ..extensions import db
from ..ledger.service import MAX_AMOUNT
from ..money import from_cents, to_cents
from ..web import admin_required, parse_int, render
from . import bp

CURRENCIES = ("eur", "usd", "gbp", "chf", "cad")
FIELDS = ("name", "credits", "price", "currency", "validity_days", "position")


def parse_pack(form) -> tuple[dict, dict[str, str]]:
    values, errors = {}, {}
    name = (form.get("name") or "").strip()
    if not name or len(name) > 120:
        errors["name"] = _("A name of 1 to 120 characters is required.")
    values["name"] = name
    values["credits"] = parse_int(form.get("credits"), minimum=1, maximum=MAX_AMOUNT)
    if values["credits"] is None:
        errors["credits"] = _("Credits: a whole number from 1 to %(max)d.", max=MAX_AMOUNT)
    values["price_cents"] = to_cents(form.get("price")) or None  # a price is positive
    if values["price_cents"] is None:
        errors["price"] = _("Price: a positive amount like 90 or 90.00.")
    currency = (form.get("currency") or "").strip().lower()
    if currency not in CURRENCIES:
        errors["currency"] = _("Choose a currency from the list.")
    values["currency"] = currency
    validity = (form.get("validity_days") or "").strip()
    values["validity_days"] = parse_int(validity, minimum=1, maximum=3650) if validity else None
    if validity and values["validity_days"] is None:
        errors["validity_days"] = _("Validity: a whole number of days from 1 to 3650, or empty for no expiry.")
    position = (form.get("position") or "").strip()
    values["position"] = parse_int(position, minimum=0, maximum=10_000) if position else 0
    if values["position"] is None:
        errors["position"] = _("Position: a whole number from 0 to 10000.")
    return values, errors


def _pack_or_404(pack_id: int) -> Pack:
    pack = db.session.get(Pack, pack_id)
    if pack is None:
        abort(404)
    return pack


def _form_values(pack: Pack | None) -> dict:
    if pack is None:
        return {"currency": "eur"}
    return {"name": pack.name, "credits": pack.credits, "price": from_cents(pack.price_cents),
            "currency": pack.currency, "validity_days": pack.validity_days or "", "position": pack.position}


@bp.get("/packs")
@admin_required
def packs():
    rows = db.session.scalars(select(Pack).order_by(Pack.active.desc(), Pack.position, Pack.id)).all()
    return render("admin/packs.html", packs=rows, format_price=from_cents)


@bp.route("/packs/new", methods=["GET", "POST"])
@admin_required
def pack_new():
    return _edit(None)


@bp.route("/packs/<int:pack_id>/edit", methods=["GET", "POST"])
@admin_required
def pack_edit(pack_id: int):
    return _edit(_pack_or_404(pack_id))


def _edit(pack: Pack | None):
    if request.method == "GET":
        return render("admin/pack_form.html", pack=pack, values=_form_values(pack), errors={},
                      currencies=CURRENCIES)
    values, errors = parse_pack(request.form)
    if errors:
        return render("admin/pack_form.html", status=422, pack=pack, values=request.form,
                      errors=errors, currencies=CURRENCIES)
    created = pack is None
    if created:
        pack = Pack(active=True)
        db.session.add(pack)
    before = {k: getattr(pack, k) for k in values} if not created else {}
    for key, value in values.items():
        setattr(pack, key, value)
    db.session.flush()
    changes = {k: [before.get(k), v] for k, v in values.items() if before.get(k) != v}
    audit.record(current_user, "pack-created" if created else "pack-updated", target=pack, changes=changes)
    flash(_("Pack “%(name)s” saved.", name=pack.name), "success")
    return redirect(url_for("admin.packs"), code=303)


@bp.post("/packs/<int:pack_id>/active")
@admin_required
def pack_active(pack_id: int):
    """Deactivate (no longer sold; past purchases untouched) or reactivate a pack."""
    pack = _pack_or_404(pack_id)
    choice = request.form.get("active")
    if choice not in ("0", "1"):  # the button sends one of them: anything else decides nothing
        flash(_("Nothing was changed: the form did not say whether to put the pack on sale. "
                "Reload the page and try again."), "error")
        return packs()[0], 422
    active = choice == "1"
    if pack.active != active:
        pack.active = active
        audit.record(current_user, "pack-activated" if active else "pack-deactivated", target=pack,
                     name=pack.name)
    flash(_("Pack “%(name)s” is now on sale.", name=pack.name) if active
          else _("Pack “%(name)s” is no longer on sale.", name=pack.name), "success")
    return redirect(url_for("admin.packs"), code=303)
