"""The admin area speaks French; its catalogue translates every message."""
from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from .conftest import form_fields

PO = Path(__file__).resolve().parents[2] / "storefront/translations/admin/fr/LC_MESSAGES/messages.po"


def test_catalogue_is_complete():
    with PO.open("rb") as f:
        catalog = read_po(f)
    untranslated = [m.id for m in catalog if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)]
    assert untranslated == []
    assert catalog.num_plurals == 2


@pytest.mark.parametrize("backend", ["sqlite"])
def test_french_credits_page_and_messages(admin_client, make_user):
    learner = make_user(credits=20)
    admin_client.submit("/lang", {"lang": "fr", "next": "/admin/credits"})
    html = admin_client.get("/admin/credits").get_data(as_text=True)
    for text in ("Modification des crédits utilisateur", "Enregistrer le filtre", "Motif", "Solde"):
        assert text in html
    fields = {**form_fields(admin_client, learner.id), "delta": "-5", "reason": "Erreur",
              "expected_balance": "15"}
    response = admin_client.htmx("POST", f"/admin/credits/{learner.id}/adjust", data=fields)
    assert "Le solde est passé de 15 à 20 depuis le chargement de cette page" in response.get_data(as_text=True)
