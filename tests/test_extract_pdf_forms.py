"""Filled PDF form fields (AcroForm) are read (security review, issue 7): their values are
not in the page's text layer, so a My Number typed into a field used to pass unseen."""

from __future__ import annotations

import io

from reportlab.pdfgen import canvas

from leakguard.extract.formats import Limits, extract
from leakguard.types import AttachmentContent


def form_pdf(fields: dict[str, str], label: str = "Application form") -> bytes:
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    if label:
        c.drawString(72, 780, label)
    y = 730
    for name, value in fields.items():
        c.acroForm.textfield(name=name, value=value, x=200, y=y, width=200, height=20)
        y -= 40
    c.acroForm.checkbox(name="agree", checked=False, x=72, y=y)
    c.showPage()
    c.save()
    return buf.getvalue()


def only(data: bytes) -> AttachmentContent:
    out = extract("form.pdf", "application/pdf", data, Limits())
    assert len(out.contents) == 1
    return out.contents[0]


def test_filled_form_fields_are_read_with_their_names() -> None:
    c = only(form_pdf({"mynumber": "1234 5678 9018", "name": "Yamada Taro"}))
    assert c.status == "read"
    text = c.sections[0].text
    assert "Application form" in text
    assert "mynumber: 1234 5678 9018" in text
    assert "name: Yamada Taro" in text


def test_empty_fields_add_nothing() -> None:
    c = only(form_pdf({"mynumber": ""}))
    assert c.status == "read"
    assert c.sections[0].text.strip() == "Application form"


def test_a_form_without_page_text_is_read_from_its_fields() -> None:
    c = only(form_pdf({"account": "0123456"}, label=""))
    assert c.status == "read"
    assert [s.text for s in c.sections] == ["account: 0123456"]
