"""The contract as a PDF (A4), in Chinese and English, with the member's signature when signed.

Chinese is set in reportlab's built-in CID font ``STSong-Light`` (Adobe-GB1; the PDF viewer supplies the
glyphs), so no font file ships with Meiye. The document's title is the contract number, so the number is
also in the PDF's metadata (search, archive).
"""

from __future__ import annotations

import io
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from meiye.contracts.models import Contract, ContractKind, ContractStatus
from meiye.contracts.selectors import text

CJK_FONT = "STSong-Light"

_LABELS: dict[str, tuple[str, str]] = {
    "number": ("合同编号", "Contract no."),
    "status": ("状态", "Status"),
    "date": ("签订日期", "Date"),
    "seller": ("经营者（甲方）", "Seller (party A)"),
    "buyer": ("消费者（乙方）", "Buyer (party B)"),
    "items": ("购买内容", "What is bought"),
    "price": ("价款", "Price"),
    "validity": ("有效期", "Validity"),
    "refund_method": ("退款方式", "Refund method"),
    "liability": ("违约责任", "Liability"),
    "terms": ("其他约定", "Other terms"),
    "signature": ("乙方签名", "Buyer's signature"),
    "unsigned": ("（待签署）", "(awaiting signature)"),
    "signed_at": ("签署时间", "Signed at"),
    "sha": ("签名校验值 SHA-256", "Signature SHA-256"),
    "name": ("姓名", "Name"),
    "member_no": ("会员号", "Member no."),
    "phone": ("电话", "Phone"),
    "store": ("门店", "Store"),
    "address": ("地址", "Address"),
    "quantity": ("数量", "Qty"),
}

_STATUS: dict[str, tuple[str, str]] = {
    ContractStatus.AWAITING_SIGNATURE: ("待签署", "Awaiting signature"),
    ContractStatus.SIGNED: ("已签署", "Signed"),
}

_KIND: dict[str, tuple[str, str]] = {
    ContractKind.STORED_VALUE: ("储值", "Stored value"),
    ContractKind.PACKAGE: ("次卡/套餐", "Package"),
}


def _both(key: str) -> str:
    zh, en = _LABELS[key]
    return f"{zh} {en}"


def _esc(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br/>")


def contract_pdf(contract: Contract) -> bytes:
    """The contract as an A4 PDF: every section in Chinese then English; the signature image if signed."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))

    body: dict[str, Any] = contract.body or {}
    base = ParagraphStyle("base", fontName=CJK_FONT, fontSize=10, leading=15, wordWrap="CJK")
    small = ParagraphStyle("small", parent=base, fontSize=8.5, leading=12, textColor=colors.HexColor("#444444"))
    title = ParagraphStyle("title", parent=base, fontSize=16, leading=22, alignment=1, spaceAfter=2)
    subtitle = ParagraphStyle("subtitle", parent=base, fontSize=11, leading=15, alignment=1, spaceAfter=8)
    heading = ParagraphStyle("heading", parent=base, fontSize=11, leading=16, spaceBefore=8, spaceAfter=2)

    def para(value: str, style: ParagraphStyle = base) -> Paragraph:
        return Paragraph(_esc(value), style)

    def bilingual(value: Any) -> list[Paragraph]:
        out = [para(text(value, "zh-hans"))]
        en = text(value, "en")
        if en and en != text(value, "zh-hans"):
            out.append(para(en, small))
        return out

    zone = ZoneInfo(contract.store.time_zone)
    status_zh, status_en = _STATUS.get(contract.status, (contract.status, contract.status))
    kind_zh, kind_en = _KIND.get(contract.kind, (contract.kind, contract.kind))
    created = timezone.localtime(contract.created_at, zone).strftime("%Y-%m-%d") if contract.created_at else ""

    story: list[Any] = [
        para(text(body.get("title"), "zh-hans"), title),
        para(text(body.get("title"), "en"), subtitle),
    ]
    head = [
        [para(_both("number")), para(contract.number)],
        [para("类型 Kind"), para(f"{kind_zh} {kind_en}")],
        [para(_both("date")), para(created)],
        [para(_both("status")), para(f"{status_zh} {status_en}")],
    ]
    story.append(_table(head, [45 * mm, 125 * mm], Table, TableStyle, colors))

    seller = body.get("seller") or {}
    buyer = body.get("buyer") or {}
    story.append(para(_both("seller"), heading))
    story.append(
        para(
            f"{seller.get('organisation', '')} · {seller.get('store', '')}\n"
            f"{_both('address')}：{seller.get('address', '')}　{_both('phone')}：{seller.get('phone', '')}"
        )
    )
    story.append(para(_both("buyer"), heading))
    story.append(
        para(
            f"{_both('name')}：{buyer.get('name', '')}　{_both('member_no')}：{buyer.get('member_no', '')}　"
            f"{_both('phone')}：{buyer.get('phone', '')}"
        )
    )

    story.append(para(_both("items"), heading))
    rows = [[para(_both("items")), para(_both("quantity"))]]
    for item in body.get("items") or []:
        cell = [para(str(item.get("name", "")))]
        detail = item.get("detail") or {}
        if detail:
            cell += bilingual(detail)
        rows.append([cell, para(str(item.get("quantity", 1)))])
    story.append(_table(rows, [145 * mm, 25 * mm], Table, TableStyle, colors, header=True))
    story.append(para(f"{_both('price')}：¥{body.get('price', '')}", heading))

    for key in ("validity", "refund_method", "liability"):
        story.append(para(_both(key), heading))
        story.extend(bilingual(body.get(key)))
    if body.get("terms"):
        story.append(para(_both("terms"), heading))
        story.extend(bilingual(body.get("terms")))

    story.append(Spacer(1, 8 * mm))
    story.append(para(_both("signature"), heading))
    if contract.status == ContractStatus.SIGNED and contract.signature:
        image = Image(io.BytesIO(_on_white(bytes(contract.signature))))
        scale = min(70 * mm / image.imageWidth, 30 * mm / image.imageHeight, 1.0)
        image.drawWidth = image.imageWidth * scale
        image.drawHeight = image.imageHeight * scale
        image.hAlign = "LEFT"
        story.append(image)
        signed_at = (
            timezone.localtime(contract.signed_at, zone).strftime("%Y-%m-%d %H:%M") if contract.signed_at else ""
        )
        story.append(para(f"{_both('signed_at')}：{signed_at}", small))
        story.append(para(f"{_LABELS['sha'][0]}：{contract.signature_sha256}", small))
    else:
        story.append(para(" ".join(_LABELS["unsigned"])))

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=contract.number,
        subject=f"{text(body.get('title'), 'en')} {contract.number}",
        author=str(seller.get("organisation", "")),
        creator="Meiye",
    )
    number = contract.number

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(CJK_FONT, 8)
        canvas.drawString(20 * mm, 10 * mm, f"{_LABELS['number'][0]} {number}")
        canvas.drawRightString(A4[0] - 20 * mm, 10 * mm, f"{document.page}")
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()


def _on_white(png: bytes) -> bytes:
    """The pad's PNG has a transparent background; flatten it onto white so every viewer shows the strokes."""
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(png)) as source:
        rgba = source.convert("RGBA")
    flat = PILImage.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    out = io.BytesIO()
    flat.save(out, format="PNG")
    return out.getvalue()


def _table(rows: list[Any], widths: list[float], table: Any, style: Any, colors: Any, *, header: bool = False) -> Any:
    t = table(rows, colWidths=widths)
    commands: list[tuple[Any, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#999999")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")))
    t.setStyle(style(commands))
    return t
