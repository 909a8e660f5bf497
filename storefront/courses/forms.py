"""The admin catalogue form: every field validated, with errors in the UI language."""
from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from ..ledger.service import MAX_AMOUNT
from ..money import AMOUNT, to_cents
from ..web import parse_int

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class WholeNumberField(IntegerField):
    """An integer field whose parse error says what to type (in the UI language)."""

    def __init__(self, label=None, validators=None, message=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.parse_message = message or _l("Enter a whole number.")

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        self.data = parse_int(valuelist[0])
        if self.data is None:
            raise ValueError(self.parse_message)


class CourseForm(FlaskForm):
    title = StringField(_l("Title"), validators=[InputRequired(), Length(max=200)])
    slug = StringField(_l("Address (slug)"), validators=[
        InputRequired(), Length(max=80),
        Regexp(SLUG, message=_l("Use lowercase letters, digits and single hyphens, e.g. first-aid."))])
    summary = StringField(_l("Summary"), validators=[Optional(), Length(max=500)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=20000)])
    price_credits = WholeNumberField(_l("Price in credits"), message=_l("Enter a whole number of credits."), validators=[
        InputRequired(message=_l("Enter a whole number of credits.")),
        NumberRange(1, MAX_AMOUNT, message=_l("The price must be between 1 and %(max)d credits.", max=MAX_AMOUNT))])
    price_money = StringField(_l("Card price (optional, e.g. 120.00)"), validators=[
        Optional(), Regexp(AMOUNT, message=_l("Enter an amount like 120 or 120.50."))])
    capacity = WholeNumberField(_l("Seats (empty: unlimited)"), validators=[
        Optional(), NumberRange(0, 100_000, message=_l("Seats must be between 0 and 100000."))])
    duration_days = WholeNumberField(_l("Duration in days"), message=_l("Enter the duration in days."), validators=[
        InputRequired(message=_l("Enter the duration in days.")),
        NumberRange(1, 3650, message=_l("The duration must be between 1 and 3650 days."))])
    last_start_date = DateField(_l("Last start date (optional)"), validators=[Optional()])
    refundable = BooleanField(_l("Learners may cancel before the start and get their credits back"))
    published = BooleanField(_l("Published"))

    def validate_price_money(self, field):
        if field.data and (to_cents(field.data) or 0) <= 0:
            raise ValidationError(_l("The card price must be above zero."))
